"""Unpacking an uploaded folder (.zip, .tar.gz / .tgz) without trusting it (pure Python, no Django).

An upload is one file, so a folder (a Hugging Face dataset saved with ``save_to_disk``, an Argilla
``Dataset.to_disk`` folder) comes packed. :func:`safe_extract` writes only regular files and folders,
each strictly inside the destination: absolute names, ``..`` parts, links and devices are refused,
and so is an archive whose members add up past ``max_bytes`` or count past ``max_members`` (a zip
bomb stops there, before or while writing, whatever its headers claim).
"""

from __future__ import annotations

import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz")
CHUNK = 1 << 20


class ArchiveError(ValueError):
    """The archive is refused; the message says why (the member's name where one is at fault)."""


def is_archive(filename: str) -> bool:
    return filename.lower().endswith(ARCHIVE_SUFFIXES)


def _member_path(dest: Path, name: str) -> Path:
    """Where member ``name`` goes under ``dest``, or ArchiveError when it would leave it."""
    if not name or "\x00" in name:
        raise ArchiveError(f"archive member {name!r}: an empty or NUL name")
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise ArchiveError(f"archive member {name!r}: an absolute path")
    parts = [p for p in PurePosixPath(posix).parts if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"archive member {name!r}: a '..' in its path leaves the folder")
    if not parts:
        return dest
    target = dest.joinpath(*parts)
    resolved_dest = dest.resolve()
    if not target.resolve().is_relative_to(resolved_dest):  # e.g. through a folder that is a link
        raise ArchiveError(f"archive member {name!r}: its path leaves the folder")
    return target


class _Budget:
    def __init__(self, max_bytes: int, max_members: int):
        self.max_bytes, self.max_members = max_bytes, max_members
        self.bytes = self.members = 0

    def member(self, name: str) -> None:
        self.members += 1
        if self.members > self.max_members:
            raise ArchiveError(f"the archive holds more than {self.max_members:,} members")

    def add(self, size: int, name: str) -> None:
        self.bytes += size
        if self.bytes > self.max_bytes:
            raise ArchiveError(
                f"the archive unpacks to more than {self.max_bytes:,} bytes (at member {name!r}); "
                "this is the limit on an unpacked upload"
            )


def _copy(source: IO[bytes], target: Path, budget: _Budget, name: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "xb") as out:  # "x": never through an existing file or link
        while chunk := source.read(CHUNK):
            budget.add(len(chunk), name)
            out.write(chunk)


def _extract_zip(fileobj: IO[bytes], dest: Path, budget: _Budget) -> None:
    try:
        archive = zipfile.ZipFile(fileobj)
    except zipfile.BadZipFile as exc:
        raise ArchiveError(f"not a readable zip file: {exc}") from None
    with archive:
        infos = archive.infolist()
        declared = 0
        for info in infos:  # everything is checked before anything is written
            budget.member(info.filename)
            kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the zip says nothing (Windows, writestr)
            if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                raise ArchiveError(f"archive member {info.filename!r}: a link or device, not a file")
            _member_path(dest, info.filename)
            declared += info.file_size
            if declared > budget.max_bytes:
                raise ArchiveError(f"the archive unpacks to more than {budget.max_bytes:,} bytes")
        for info in infos:
            target = _member_path(dest, info.filename)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            try:
                with archive.open(info) as source:
                    _copy(source, target, budget, info.filename)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise ArchiveError(f"archive member {info.filename!r} cannot be read: {exc}") from None


def _extract_tar(fileobj: IO[bytes], dest: Path, budget: _Budget) -> None:
    try:
        with tarfile.open(fileobj=fileobj, mode="r:gz") as archive:
            for member in archive:  # streaming: one member at a time
                budget.member(member.name)
                target = _member_path(dest, member.name)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                if not member.isfile():
                    raise ArchiveError(f"archive member {member.name!r}: a link or device, not a file")
                if budget.bytes + member.size > budget.max_bytes:
                    budget.add(member.size, member.name)  # raises: its header says it is too big already
                source = archive.extractfile(member)
                if source is None:
                    raise ArchiveError(f"archive member {member.name!r} cannot be read")
                with source:
                    _copy(source, target, budget, member.name)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArchiveError(f"not a readable .tar.gz archive: {exc}") from None


def safe_extract(fileobj: IO[bytes], *, filename: str, dest: Path, max_bytes: int, max_members: int = 10_000) -> None:
    """Unpack ``fileobj`` (a .zip, or a .tar.gz / .tgz, by ``filename``) into the existing folder ``dest``."""
    budget = _Budget(max_bytes, max_members)
    name = filename.lower()
    if name.endswith(".zip"):
        _extract_zip(fileobj, dest, budget)
    elif name.endswith((".tar.gz", ".tgz")):
        _extract_tar(fileobj, dest, budget)
    else:
        raise ArchiveError(f"unsupported archive {filename!r}: pack the folder as .zip or .tar.gz")


# What a folder holds, by the file that marks it.
HF_DATASET = "hf_dataset"  # save_to_disk of a Dataset: dataset_info.json + state.json
HF_DATASET_DICT = "hf_dataset_dict"  # save_to_disk of a DatasetDict: dataset_dict.json
ARGILLA_DISK = "argilla_disk"  # Argilla 2.x Dataset.to_disk: records.json (+ settings.json, dataset.json)


def find_dataset(root: Path) -> tuple[str, Path]:
    """(kind, folder) of the outermost dataset folder under ``root`` (the archive may wrap it in a folder)."""
    found: list[tuple[int, str, Path]] = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        depth = len(path.relative_to(root).parts)
        if path.name == "dataset_dict.json":
            found.append((depth, HF_DATASET_DICT, path.parent))
        elif path.name == "state.json" and (path.parent / "dataset_info.json").is_file():
            found.append((depth, HF_DATASET, path.parent))
        elif path.name == "records.json":
            found.append((depth, ARGILLA_DISK, path.parent))
    if not found:
        raise ArchiveError(
            "the archive holds no dataset: expected a folder saved with Hugging Face datasets' save_to_disk "
            "(dataset_info.json, state.json) or an Argilla Dataset.to_disk folder (records.json)"
        )
    depth, kind, folder = min(found, key=lambda f: (f[0], f[1] != HF_DATASET_DICT))
    return kind, folder
