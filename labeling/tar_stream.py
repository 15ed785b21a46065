"""An uncompressed tar of files on disk, made while it is sent: headers from :mod:`tarfile`, the
files' bytes read a block at a time, so memory stays flat whatever their size, and the length is
known before the first byte (``Content-Length``).

Pure Python (no Django). Members are folders and files, in the order given; each is stored with
plain modes (folders 0755, files 0644: an extracted copy is the user's to change,
whatever the modes on disk) and no owner names.
"""

import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

CHUNK_BYTES = 1 << 20
_BLOCK = tarfile.BLOCKSIZE  # 512: headers and data are padded to it
_RECORD = tarfile.RECORDSIZE  # 10240: the archive is padded to it, as tarfile writes it


@dataclass(frozen=True)
class Member:
    name: str  # the path inside the archive, "/"-separated
    path: Path  # the file or folder on disk (a folder is stored as one entry, without its contents)


class TarStream:
    """``size`` bytes, given by iterating ``chunks()``. The files are stat'ed here; they must not
    change until the stream is sent (a file whose length changed fails the stream)."""

    def __init__(self, members: Sequence[Member]):
        self._entries: list[tuple[bytes, Path | None, int]] = []
        size = 0
        for member in members:
            info = tarfile.TarInfo(member.name)
            stat = member.path.stat()
            info.mtime = int(stat.st_mtime)
            if member.path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            else:
                info.size, info.mode = stat.st_size, 0o644
            header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
            self._entries.append((header, None if member.path.is_dir() else member.path, info.size))
            size += len(header) + _padded(info.size)
        size += 2 * _BLOCK  # the end-of-archive marker
        self._trailer = 2 * _BLOCK + (-size % _RECORD)
        self.size = size + (-size % _RECORD)

    def chunks(self) -> Iterator[bytes]:
        for header, path, size in self._entries:
            yield header
            if path is None:
                continue
            sent = 0
            with open(path, "rb") as f:
                while block := f.read(CHUNK_BYTES):
                    sent += len(block)
                    yield block
            if sent != size:
                raise OSError(f"{path} changed while it was being sent ({sent} bytes, {size} expected)")
            yield b"\0" * (_padded(size) - size)
        yield b"\0" * self._trailer


def _padded(size: int) -> int:
    return size + (-size % _BLOCK)
