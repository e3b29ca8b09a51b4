"""Where crm-tui keeps its files.

Everything comes from platformdirs, unless ``CRM_TUI_HOME`` (or ``--home DIR``) puts all data and config under
one folder. Nothing here touches the disk until a function that says so is called.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from crm_tui.core.private_files import private_dir, tighten_home_folder

APP_NAME = "crm-tui"
HOME_ENV = "CRM_TUI_HOME"


@dataclass(frozen=True)
class Paths:
    """The folders and files of one crm-tui installation (or one ``--home``)."""

    config_dir: Path
    data_dir: Path
    state_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    def database_file(self, *, demo: bool = False) -> Path:
        return self.data_dir / ("demo.sqlite3" if demo else "crm.sqlite3")

    def documents_dir(self, *, demo: bool = False) -> Path:
        return self.data_dir / ("demo-documents" if demo else "documents")

    @property
    def log_file(self) -> Path:
        return self.state_dir / "crm-tui.log"

    def ensure(self) -> Paths:
        """Create the folders (called when a command actually needs them), readable by their owner only: they
        hold the customers' data, mail and the log. What an older crm-tui left there with the umask's modes
        (the database, documents, backups, the log) is made private too."""
        for folder in (self.config_dir, self.data_dir, self.state_dir):
            private_dir(folder)  # a folder not ours to change (named with --home) stays as it is
            tighten_home_folder(folder)
        return self


def resolve_paths(home: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None) -> Paths:
    """The paths for ``--home`` if given, else ``$CRM_TUI_HOME``, else the platform's user folders."""
    env = os.environ if environ is None else environ
    chosen = home if home is not None else env.get(HOME_ENV) or None
    if chosen is not None:
        root = Path(chosen).expanduser().resolve()
        return Paths(config_dir=root / "config", data_dir=root / "data", state_dir=root / "state")

    return Paths(
        config_dir=Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        data_dir=Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
        state_dir=Path(platformdirs.user_state_dir(APP_NAME, appauthor=False)),
    )
