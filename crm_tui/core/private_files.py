"""Files and folders readable by their owner only (0600, 0700), whatever the umask: the database and its
WAL, the documents, the log and the backups hold the customers' data and mail.

Modes are set explicitly (``os.open``/``mkdir`` with a mode, then ``chmod``): a umask of 0o000 would otherwise
leave them world-writable, and 0o022 world-readable. ``tighten`` makes a home an older crm-tui left with the
umask's modes private too. Only the standard library here.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(folder: Path, *, tighten_existing: bool = True) -> Path:
    """``folder`` and any missing parents, created 0700; an existing ``folder`` is made 0700 too unless
    ``tighten_existing`` is False (its existing parents are left as they are: not necessarily ours)."""
    missing = []
    current = folder
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for item in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another process
            item.mkdir(mode=DIR_MODE)
    if not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(folder))
    if tighten_existing or missing:
        tighten(folder)
    return folder


def create_private_file(path: Path) -> None:
    """``path`` as an empty 0600 file if it does not exist yet; an existing one is made private where we may
    (its content untouched). SQLite then gives a database's -wal and -shm files the same mode."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        tighten(path)
        return
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def open_private(path: Path, *, exclusive: bool = True) -> int:
    """A file descriptor for writing a new 0600 file at ``path`` (``exclusive``: it must not exist yet)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def tighten(path: Path, *, recursive: bool = False) -> None:
    """Make ``path`` private if it exists: a file for its owner only (0644 becomes 0600), a folder 0700
    (with ``recursive``, everything in it first, the folder itself last: a folder found 0700 was done
    completely). Symbolic links are not followed; what cannot be changed (not ours) stays as it is."""
    try:
        status = path.lstat()
    except OSError:
        return
    if stat.S_ISLNK(status.st_mode):
        return
    is_dir = stat.S_ISDIR(status.st_mode)
    if recursive and is_dir:
        for root, folders, files in os.walk(path, topdown=False):
            for name in files + folders:
                tighten(Path(root) / name)
    # A file keeps its owner's bits (a script someone keeps there stays executable): only the others' go.
    wanted = DIR_MODE if is_dir else stat.S_IMODE(status.st_mode) & 0o700
    if stat.S_IMODE(status.st_mode) != wanted:
        with contextlib.suppress(OSError):
            path.chmod(wanted)


def tighten_home_folder(folder: Path) -> None:
    """What a crm-tui home folder holds, made private: every file in it, and every folder in it whose own
    mode is not 0700 yet with all it holds (an older crm-tui made them with the umask's modes; a folder
    already 0700 was made or tightened by this version, so the documents are not walked on every start)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_symlink():
                continue
            if entry.is_dir() and stat.S_IMODE(entry.stat().st_mode) == DIR_MODE:
                continue
        except OSError:
            continue
        tighten(Path(entry.path), recursive=True)
