"""Imports run one way through store/, as the README's Development section draws it: a layer
may import the layers below it, never one above (schema at the bottom, the CLI at the top)."""

from __future__ import annotations

import re
from pathlib import Path

STORE = Path(__file__).resolve().parents[1] / "store"
#: Bottom to top.
LAYERS = ["schema", "media", "expiry", "capture", "queries", "review", "transfer", "gateway", "cli"]
_IMPORT = re.compile(r"^\s*(?:from|import) store\.(\w+)", re.MULTILINE)


def test_no_module_imports_a_layer_above_its_own():
    rank = {layer: number for number, layer in enumerate(LAYERS)}
    upward = []
    for path in STORE.rglob("*.py"):
        layer = path.relative_to(STORE).parts[0].removesuffix(".py")
        if layer not in rank:
            continue  # store/__init__.py and friends: the public surface, above everything
        for imported in _IMPORT.findall(path.read_text()):
            if rank.get(imported, -1) > rank[layer]:
                upward.append(f"{path.relative_to(STORE)} imports store.{imported}")
    assert upward == []


def test_every_package_of_store_has_its_place_in_the_layers():
    packages = {path.name for path in STORE.iterdir() if (path / "__init__.py").exists()}
    assert packages <= set(LAYERS)
