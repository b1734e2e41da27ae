"""What a wheel carries: every package of store/, and the dashboard (app/) as `imagelog_app`
with its Streamlit config and favicon, so `imagelog dashboard` runs from an installed package.
(tests/test_browser.py installs the wheel and drives the dashboard it serves.)"""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from store.cli import dashboard_script, main

ROOT = Path(__file__).resolve().parents[1]


def build_wheel(into: Path) -> Path:
    """`pip wheel` of the checkout (its build backend from the package index, as for a user)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(into), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    [wheel] = into.glob("imagelog-*.whl")
    return wheel


def test_the_package_list_names_every_package_on_disk():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts) for init in ROOT.glob("store/**/__init__.py")
    }
    app = {
        "imagelog_app",
        *(
            f"imagelog_app.{d.name}"
            for d in (ROOT / "app").iterdir()
            if d.is_dir() and any(d.glob("*.py"))
        ),
    }

    assert set(config["packages"]) == on_disk | app
    assert config["package-dir"] == {"imagelog_app": "app"}


def test_a_wheel_carries_the_dashboard_with_its_config_and_favicon(tmp_path):
    wheel = build_wheel(tmp_path)

    names = set(zipfile.ZipFile(wheel).namelist())
    pages = {f"imagelog_app/{path.relative_to(ROOT / 'app')}" for path in ROOT.glob("app/**/*.py")}
    assert pages <= names
    assert {"imagelog_app/.streamlit/config.toml", "imagelog_app/static/favicon.png"} <= names
    bundled = zipfile.ZipFile(wheel).read("imagelog_app/.streamlit/config.toml")
    assert bundled == (ROOT / ".streamlit" / "config.toml").read_bytes()


def test_the_dashboard_command_finds_the_app_and_checks_its_port(capsys):
    assert dashboard_script() == ROOT / "app" / "main.py"  # the editable install's app/
    with pytest.raises(SystemExit):
        main(["dashboard", "--port", "70000"])
    assert "not a TCP port" in capsys.readouterr().err
