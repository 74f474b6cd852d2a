"""A new Prefect home's database, copied from one Prefect migrated before (issue 32, point 4).

Prefect creates a new home's SQLite database by running every Alembic migration (116 in 3.9.1):
15-23 s of a first run on 2 cores, with the card idle. The result depends only on Prefect's
version, so kademe keeps one migrated, empty database per Prefect version in its cache
(``$KADEME_PREFECT_TEMPLATES``, default ``$XDG_CACHE_HOME/kademe`` or ``~/.cache/kademe``) and copies it into
each new home before the server starts. Prefect still runs its migration check at start (the copy
is at head: nothing to do), so a copy from another version is never used and a wrong one cannot
slip through. The copy is taken with SQLite's backup API right after Prefect migrated a home and
before any flow ran: a consistent, empty database.

Set ``KADEME_PREFECT_DB_TEMPLATE=0`` to let Prefect create every home's database itself.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path


def template_path() -> Path | None:
    """The migrated template of this Prefect version, or None when templates are turned off."""
    if os.environ.get("KADEME_PREFECT_DB_TEMPLATE", "1").lower() in ("0", "false", "no", "off"):
        return None
    import prefect

    root = os.environ.get("KADEME_PREFECT_TEMPLATES") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kademe"
    return Path(root) / f"prefect-{prefect.__version__}.db"


def seed(database: str) -> bool:
    """Copy the template into ``database`` (which does not exist yet); False when there is none to copy.

    The copy is written beside the database and renamed into place, so a killed copy leaves no torn
    database; a database that appeared meanwhile (another process) is left as it is.
    """
    template = template_path()
    if template is None or not template.is_file():
        return False
    target = Path(database)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        _backup(template, tmp)
        os.link(tmp, target)  # create-only: another process's database wins
    except FileExistsError:
        pass
    except (OSError, sqlite3.Error):
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def keep(database: str) -> None:
    """Keep a copy of a freshly migrated database as this Prefect version's template (best effort)."""
    template = template_path()
    if template is None or template.exists():
        return
    tmp = template.with_name(f".{template.name}.{os.getpid()}.tmp")
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        _backup(Path(database), tmp)
        os.replace(tmp, template)
    except (OSError, sqlite3.Error):
        tmp.unlink(missing_ok=True)


def _backup(source: Path, target: Path) -> None:
    """SQLite's online backup of ``source`` into ``target``: consistent even while a server has it open."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
