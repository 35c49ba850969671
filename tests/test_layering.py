"""The apps' imports point one way: ops -> migrations_app -> billing -> credits -> core.

Every import in every module of the apps (migrations and imports inside functions included) is
read with `ast`, so a dependency cannot hide from the check by being made late. `project/` sits
outside the stack (settings, URLs, the Celery app): it may import any app, and no app imports it.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Each app, and the packages of this project it must not import.
FORBIDDEN = {
    "core": {"credits", "billing", "migrations_app", "ops", "project"},
    "credits": {"billing", "migrations_app", "ops", "project"},
    "billing": {"migrations_app", "ops", "project"},
    "migrations_app": {"ops", "project"},
    "ops": {"project"},
}


def imported_packages(tree: ast.AST, *, package: str) -> list[tuple[int, str]]:
    """(line, top-level package) of each import in the tree; relative imports name `package`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            name = package if node.level else (node.module or "")
            found.append((node.lineno, name.split(".")[0]))
    return found


def violations(source: str, *, app: str, filename: str) -> list[str]:
    """`file:line imports X` for each import of a package the app must not import."""
    tree = ast.parse(source, filename=filename)
    return [
        f"{filename}:{line} imports {name} ({app} must not)"
        for line, name in imported_packages(tree, package=app)
        if name in FORBIDDEN[app]
    ]


def test_no_app_imports_upward():
    found = []
    for app in FORBIDDEN:
        for path in sorted((ROOT / app).rglob("*.py")):
            found += violations(path.read_text(), app=app, filename=str(path.relative_to(ROOT)))
    assert found == []


def test_every_app_is_checked():
    assert all((ROOT / app / "apps.py").is_file() for app in FORBIDDEN)


@pytest.mark.parametrize(
    ("app", "source", "expected"),
    [
        ("credits", "import os\nfrom billing.models import UserProfile\n", "2 imports billing"),
        (
            "billing",
            "def late():\n    from migrations_app import tasks\n",
            "2 imports migrations_app",
        ),
        ("core", "import credits.models\n", "1 imports credits"),
        ("migrations_app", "from ops.health import credits_health\n", "1 imports ops"),
        ("ops", "from project import settings\n", "1 imports project"),
        (
            "credits",
            "class A:\n    def f(self):\n        import project.bulk\n",
            "3 imports project",
        ),
    ],
)
def test_an_upward_import_is_caught_and_named(app, source, expected):
    assert violations(source, app=app, filename="synthetic.py") == [
        f"synthetic.py:{expected} ({app} must not)"
    ]


def test_downward_and_outside_imports_pass():
    source = "from core.bulk import copy_columns\nfrom credits.models import CreditAccount\n"
    source += "import django\nfrom . import selectors\n"
    assert violations(source, app="billing", filename="synthetic.py") == []
