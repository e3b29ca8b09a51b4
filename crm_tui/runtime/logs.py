"""The log file: what went wrong, with its traceback, goes there, never to the screen.

Records of the ``crm_tui`` logger are appended to ``Paths.log_file`` (a private file, 0600, in a 0700
folder) once ``open_log`` was called for those paths; tests capture the same records with ``caplog``.
"""

from __future__ import annotations

import logging
import os
from io import TextIOWrapper
from pathlib import Path

from crm_tui.core.private_files import private_dir
from crm_tui.runtime.paths import Paths

LOGGER = logging.getLogger("crm_tui")
_HANDLER_NAME = "crm-tui-log-file"


class _PrivateFileHandler(logging.FileHandler):
    """A FileHandler whose file is made readable by its owner only (it can hold record contents)."""

    def _open(self) -> TextIOWrapper:
        path = Path(self.baseFilename)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.fchmod(fd, 0o600)  # a file an older crm-tui made with the umask is made private too
        finally:
            os.close(fd)
        return super()._open()

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        """A record that cannot be written (the disk is full) is dropped without a word: logging's default
        prints "--- Logging error ---" with a traceback on stderr, over the app's screen or a command's output."""


def open_log(paths: Paths) -> None:
    """Send the ``crm_tui`` logger's records (WARNING and up) to this home's log file; again for another
    home replaces the file (tests open many homes in one process). Opening the file waits for the first
    record, so a home that never logs gets no file."""
    for handler in list(LOGGER.handlers):
        if handler.get_name() == _HANDLER_NAME:
            if Path(getattr(handler, "baseFilename", "")) == paths.log_file.resolve():
                return
            LOGGER.removeHandler(handler)
            handler.close()
    try:
        private_dir(paths.state_dir)  # and the folders above it that it makes (a new --home)
    except OSError:
        return  # no log file then: errors still become notifications
    handler = _PrivateFileHandler(paths.log_file, encoding="utf-8", delay=True)
    handler.set_name(_HANDLER_NAME)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("--- %(asctime)s %(levelname)s %(name)s: %(message)s"))
    LOGGER.addHandler(handler)
    if LOGGER.level == logging.NOTSET or LOGGER.level > logging.WARNING:
        LOGGER.setLevel(logging.WARNING)


def log_error(error: BaseException, what: str) -> None:
    """An unexpected error, with its traceback (no local variables), at ERROR level."""
    LOGGER.error("%s: %s: %s", what, type(error).__name__, error, exc_info=error)
