"""Frozen SQL: a migration that installs SQL carries its own copy, `<migration>.pg.sql` beside
it (as django-hordak does), so editing live code never changes what an applied migration did.

Checked for every migration of the project's apps: it imports no project code outside its own
migrations package, it opens no file outside its migrations folder, and each `.pg.sql` file is
read by the migration it is named after.
"""

import ast
import builtins
import importlib
import io
import sys
from pathlib import Path

import pytest
from django.apps import apps

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = {path.parent.name for path in ROOT.glob("*/__init__.py")}
PROJECT_APPS = sorted(
    (config.name, Path(config.path) / "migrations")
    for config in apps.get_app_configs()
    if Path(config.path).parent == ROOT and (Path(config.path) / "migrations").is_dir()
)


def migration_modules(folder: Path) -> list[Path]:
    return sorted(path for path in folder.glob("*.py") if path.name != "__init__.py")


def project_imports(path: Path) -> list[str]:
    """The project modules the file imports (relative imports resolved against its package)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = path.parent.relative_to(ROOT).parts
                base = ".".join(package[: len(package) - node.level + 1])
                names.append(f"{base}.{node.module}" if node.module else base)
            else:
                names.append(node.module)
    return [name for name in names if name.split(".")[0] in PROJECT_PACKAGES]


def test_the_project_apps_are_found():
    assert {"credits", "billing", "migrations_app"} <= {app for app, _ in PROJECT_APPS}


@pytest.mark.parametrize(("app", "folder"), PROJECT_APPS, ids=[app for app, _ in PROJECT_APPS])
def test_migrations_import_no_live_project_code(app, folder):
    for path in migration_modules(folder):
        outside = [
            name
            for name in project_imports(path)
            if name != f"{app}.migrations" and not name.startswith(f"{app}.migrations.")
        ]
        assert outside == [], f"{path.relative_to(ROOT)} imports live code: {outside}"


@pytest.mark.parametrize(("app", "folder"), PROJECT_APPS, ids=[app for app, _ in PROJECT_APPS])
def test_migrations_read_only_their_own_frozen_sql(app, folder, monkeypatch):
    # given: every file opened while each migration module is imported afresh
    opened: dict[str, list[Path]] = {}
    real_open = io.open

    def recording_open(file, *args, **kwargs):
        if isinstance(file, str | Path):
            opened.setdefault(current, []).append(Path(file).resolve())
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(io, "open", recording_open)
    monkeypatch.setattr(builtins, "open", recording_open)
    for path in migration_modules(folder):
        current = path.stem
        name = f"{app}.migrations.{current}"
        monkeypatch.delitem(sys.modules, name, raising=False)
        importlib.import_module(name)
    monkeypatch.undo()

    # then nothing outside the migrations folder was read
    for migration, paths in opened.items():
        for path in paths:
            assert path.parent == folder.resolve(), f"{app} {migration} read {path}"
    # and each .pg.sql was read by its own migration, and only by it
    for sql in folder.glob("*.pg.sql"):
        migration = sql.name.removesuffix(".pg.sql")
        assert (folder / f"{migration}.py").exists(), f"{sql.name} has no migration"
        readers = sorted(name for name, paths in opened.items() if sql.resolve() in paths)
        assert readers == [migration], f"{sql.name} is read by {readers}"
