"""Lazy exports for package `__init__` files (PEP 562): a name is imported when first used.

Importing `store.schema.models` runs `store/__init__.py` first, and the command line's
`--help` runs `store/expiry/__init__.py`: were those to import the recorder or the prober,
every light import would pay for httpx, Pillow, Alembic and pandas. So each package lists
what it exports and from where; `from store import Recorder` works as before.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The `__getattr__` and `__dir__` of `package`, whose `exports` list names by module.

    A name, once imported, is set on the package, so later lookups skip `__getattr__`. A name
    cannot be lazy if a submodule has it (`store.queries.facets.facets`): importing the
    submodule sets the package's attribute to the module, and `__getattr__` is never asked.
    """
    home = {name: module for module, names in exports.items() for name in names}
    if shadowed := sorted(home.keys() & {module.rpartition(".")[2] for module in exports}):
        raise ValueError(f"{package}: {shadowed} name submodules too; import them eagerly")

    def __getattr__(name: str) -> Any:
        if (module := home.get(name)) is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *home})

    return __getattr__, __dir__
