"""Importing is cheap and lazy: light parts of the package load none of the heavy libraries, the
command's `--help` loads none of them, and the lazy package exports stay complete."""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from store.lazy_exports import lazy_exports

REPO = Path(__file__).resolve().parents[1]
#: What a light import must not pay for.
HEAVY = ("httpx", "PIL", "alembic", "pandas", "streamlit", "tqdm", "store.capture.recorder")
LAZY_PACKAGES = ("store", "store.expiry", "store.queries", "store.review")


def modules_loaded_by(code: str) -> set[str]:
    """The modules `code` leaves in sys.modules, run in a fresh interpreter."""
    runner = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", runner], capture_output=True, text=True, cwd=REPO, check=True
    )
    return set(done.stdout.split())


@pytest.mark.parametrize("module", ["store.schema.models", "store.schema.config"])
def test_importing_the_schema_loads_no_heavy_library(module):
    loaded = modules_loaded_by(f"import {module}")

    assert module in loaded
    assert sorted(name for name in HEAVY if name in loaded) == []


def test_predicting_an_expiry_loads_neither_httpx_nor_pillow():
    # The writer asks this for every image; the prober and thumbnails live in the same package.
    loaded = modules_loaded_by("from store.expiry import predict_expiry")

    assert "store.expiry.predict" in loaded
    assert sorted(name for name in HEAVY if name in loaded) == []


def test_imagelog_help_loads_no_heavy_library_and_no_database_code():
    loaded = modules_loaded_by(
        "import contextlib, io, store.cli\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    store.cli.main(['--help'])"
    )

    assert "store.cli" in loaded
    assert sorted(name for name in (*HEAVY, "sqlalchemy", "sqlmodel") if name in loaded) == []


def test_imagelog_help_lists_every_command():
    done = subprocess.run(
        [sys.executable, "-m", "store", "--help"], capture_output=True, text=True, check=True
    )

    commands = ("import", "export", "copy", "stats", "demo", "thumbnails", "check", "review")
    for command in commands:
        assert command in done.stdout


def declared_exports(package: str) -> dict[str, str]:
    """name -> module, as `package`'s `__init__` imports it: under `if TYPE_CHECKING:` (what
    type checkers see of the lazy names) or at once (names that cannot be lazy)."""
    tree = ast.parse(inspect.getsource(importlib.import_module(package)))
    [block] = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    ]
    return {
        alias.name: node.module
        for node in [*tree.body, *block.body]
        if isinstance(node, ast.ImportFrom)
        and node.module not in (None, "typing", "store.lazy_exports")
        for alias in node.names
    }


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_lazy_export_is_the_object_its_module_defines(package):
    module = importlib.import_module(package)
    declared = declared_exports(package)

    assert sorted(module.__all__) == sorted(declared)  # what type checkers see is what exists
    for name, home in declared.items():
        assert getattr(module, name) is getattr(importlib.import_module(home), name)
    assert set(module.__all__) <= set(dir(module))


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_an_unknown_name_is_an_attribute_error(package):
    module = importlib.import_module(package)

    with pytest.raises(AttributeError, match="no attribute 'Recoder'"):
        module.Recoder  # noqa: B018


def test_a_lazy_name_that_a_submodule_would_shadow_is_refused():
    with pytest.raises(ValueError, match=r"\['facets'\] name submodules too"):
        lazy_exports("store.queries", {"store.queries.facets": ["Facets", "facets"]})


def test_the_public_names_import_as_the_readme_shows():
    loaded = modules_loaded_by("from store import Recorder, CallRecord, ImageRecord")

    assert {"store.capture.recorder", "store.schema.records"} <= loaded
