"""The CSV backup of the legacy rows an execute run changes, written before the run migrates
anyone.

A source that changes legacy rows (`changes_legacy`) gives the rows it would change
(`backup_rows`); they are written, a file per source, to
`<folder>/<source>-run<run id>-<run moment>.csv`, batch by batch in the run's own order. The
folder is made and checked writable before the run is started, so an unusable folder starts
no run; a write that fails after the start (a full disk) fails the run before any user is
migrated. With `keep_legacy`, or no source that changes legacy rows, there is nothing to back
up and no folder is needed.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from migrations_app.models import MigrationRun
from migrations_app.sources import Context, get_source


class BackupUnavailable(Exception):
    """The backup folder cannot be used, or the backup could not be written: `problem` says
    why, in an operator's words."""

    def __init__(self, folder: Path, problem: str):
        super().__init__(f"{folder}: {problem}")
        self.folder = folder
        self.problem = problem


def backup_folder(*, backup_dir: str | Path, sources: list[str], context: Context) -> Path | None:
    """The backup's folder, made and writable (None: nothing of this run needs a backup)."""
    if context.keep_legacy or not any(get_source(name).changes_legacy for name in sources):
        return None
    folder = Path(backup_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BackupUnavailable(folder, f"cannot be created ({error.strerror or error})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BackupUnavailable(folder, "not writable")
    return folder


def backup_write(
    *, folder: Path | None, sources: list[str], selection, context: Context, run: MigrationRun
) -> list[Path]:
    """Write each changing source's backup into `folder`; return the files' paths.

    OSError propagates (the caller fails the run with it)."""
    paths = []
    for name in sources:
        source = get_source(name)
        if folder is None or not source.changes_legacy:
            continue
        path = folder / f"{name}-run{run.pk}-{context.now:%Y%m%dT%H%M%S}.csv"
        with path.open("w", newline="") as handle:
            writer = None
            for user_ids in selection.batches(source):
                for row in source.backup_rows(user_ids):
                    if writer is None:
                        writer = csv.DictWriter(handle, fieldnames=list(row))
                        writer.writeheader()
                    writer.writerow(row)
        paths.append(path)
    return paths
