"""An uncompressed tar of files, made while it is sent: headers from :mod:`tarfile`, the files' bytes
read a block at a time from streams the members open (files on disk, or objects in the artifact
store through ``common.storage.open_file``), so memory stays flat whatever their size, and the length
is known before the first byte (``Content-Length``) from the sizes the members give.

Pure Python (no Django). Members are folders and files, in the order given; each is stored with
plain modes (folders 0755, files 0644: an extracted copy is the user's to change, whatever the modes
where it is kept), the given modification time and no owner names.
"""

import tarfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO

CHUNK_BYTES = 1 << 20
_BLOCK = tarfile.BLOCKSIZE  # 512: headers and data are padded to it
_RECORD = tarfile.RECORDSIZE  # 10240: the archive is padded to it, as tarfile writes it


@dataclass(frozen=True)
class Member:
    name: str  # the path inside the archive, "/"-separated
    size: int | None = None  # bytes of a file; None: a folder (stored as one entry, without its contents)
    opener: Callable[[], BinaryIO] | None = None  # a file's bytes, opened when they are sent
    mtime: int = 0

    @classmethod
    def folder(cls, name: str, *, mtime: int = 0) -> "Member":
        return cls(name, mtime=mtime)

    @classmethod
    def file(cls, name: str, *, size: int, opener: Callable[[], BinaryIO], mtime: int = 0) -> "Member":
        return cls(name, size=size, opener=opener, mtime=mtime)

    @classmethod
    def from_path(cls, name: str, path: Path) -> "Member":
        """A folder or file on disk (its size and modification time read now)."""
        stat = path.stat()
        if path.is_dir():
            return cls.folder(name, mtime=int(stat.st_mtime))
        return cls.file(name, size=stat.st_size, opener=partial(open, path, "rb"), mtime=int(stat.st_mtime))


class TarStream:
    """``size`` bytes, given by iterating ``chunks()``. The files must not change until the stream is
    sent (a file whose length is not the size its member gave fails the stream)."""

    def __init__(self, members: Sequence[Member]):
        self._entries: list[tuple[bytes, Member]] = []
        size = 0
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.mtime = member.mtime
            if member.size is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            else:
                if member.opener is None:
                    raise ValueError(f"{member.name}: a file member needs an opener")
                info.size, info.mode = member.size, 0o644
            header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
            self._entries.append((header, member))
            size += len(header) + _padded(info.size)
        size += 2 * _BLOCK  # the end-of-archive marker
        self._trailer = 2 * _BLOCK + (-size % _RECORD)
        self.size = size + (-size % _RECORD)

    def chunks(self) -> Iterator[bytes]:
        for header, member in self._entries:
            yield header
            if member.size is None:
                continue
            size, sent = member.size, 0
            with member.opener() as f:
                while block := f.read(CHUNK_BYTES):
                    sent += len(block)
                    if sent > size:
                        break
                    yield block
            if sent != size:
                got = f"more than {size}" if sent > size else str(sent)
                raise OSError(f"{member.name} changed while it was being sent ({got} bytes, {size} expected)")
            yield b"\0" * (_padded(size) - size)
        yield b"\0" * self._trailer


def _padded(size: int) -> int:
    return size + (-size % _BLOCK)
