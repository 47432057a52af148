"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Write to a temporary file in the same directory, fsync, then os.replace. An interrupted
write leaves at most a stray `.tmp-*` file, which never has the target's name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary sibling of `path` for writing; rename it over `path` on success."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files; mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}.", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, mode, **({"encoding": "utf-8", "newline": ""} if mode == "w" else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _after_rename(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# Fault injection for the tests (tests/engine/test_faults.py): TINYCNN_TEST_KILL_AFTER="last.pt:2"
# ends the process at once, as a SIGKILL would, right after its second rename onto a last.pt.
_KILL_AFTER = os.environ.get("TINYCNN_TEST_KILL_AFTER", "")
_renames: dict[str, int] = {}


def _after_rename(path: Path) -> None:
    if not _KILL_AFTER:
        return
    name, _, count = _KILL_AFTER.partition(":")
    if path.name == name:
        _renames[name] = _renames.get(name, 0) + 1
        if _renames[name] == int(count or 1):
            os._exit(137)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)
