"""Where the log lives: `IMAGELOG_DATABASE_URL`, else a SQLite file in the user's data folder."""

from __future__ import annotations

import os
from pathlib import Path

DATABASE_URL_ENV = "IMAGELOG_DATABASE_URL"


def default_data_dir() -> Path:
    """`$IMAGELOG_HOME`, else `$XDG_DATA_HOME/imagelog`, else `~/.local/share/imagelog`."""
    if home := os.environ.get("IMAGELOG_HOME"):
        return Path(home)
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "imagelog"


def database_url(url: str | None = None) -> str:
    """The URL to use: the argument, else the environment, else the default SQLite file."""
    if url:
        return url
    if env_url := os.environ.get(DATABASE_URL_ENV):
        return env_url
    path = default_data_dir() / "imagelog.db"
    return f"sqlite:///{path}"
