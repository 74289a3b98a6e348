"""The wheel the site publishes runs a downloaded example, with no checkout in sight.

The wheel is built by the function the docs build uses (``docs/_ext/site_wheel.py``),
installed (not the checkout) into a folder of its own, and a gallery example runs from
an empty folder with that folder first on its path, in the quick profile.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The shortest chapter.
EXAMPLE = ROOT / "gallery" / "plot_01_ewma_bias_correction.py"


def _site_wheel():
    spec = importlib.util.spec_from_file_location(
        "site_wheel", ROOT / "docs" / "_ext" / "site_wheel.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


site_wheel = _site_wheel()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return site_wheel.build_wheel(ROOT, tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel, installed by pip into a folder of its own (its dependencies are this
    environment's: torch is too big to install per test)."""
    target = tmp_path_factory.mktemp("installed")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    return target


def test_the_wheel_holds_the_modules_of_the_checkout_and_no_other(wheel):
    package = ROOT / "src" / "fashion_optim"
    checkout = {
        f"fashion_optim/{p.relative_to(package).as_posix()}"
        for p in [*package.rglob("*.py"), package / "py.typed"]
        if "__pycache__" not in p.parts
    }
    with zipfile.ZipFile(wheel) as archive:
        held = {n for n in archive.namelist() if n.startswith("fashion_optim/")}
    assert not checkout - held, f"the wheel lacks {sorted(checkout - held)}"
    stale = {n for n in held - checkout if n.endswith(".py")}
    assert not stale, f"the wheel holds modules the checkout has not: {sorted(stale)}"
    metadata = site_wheel.wheel_metadata(wheel)
    assert metadata["Name"] == "fashion-optim"
    assert wheel.name == f"fashion_optim-{metadata['Version']}-py3-none-any.whl"


def test_the_zip_gets_the_wheel_once(wheel, tmp_path):
    archive = tmp_path / "examples.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("plot_01.py", "print(1)\n")
    site_wheel.add_to_zip(archive, wheel)
    site_wheel.add_to_zip(archive, wheel)  # a second build's copy: still one wheel
    with zipfile.ZipFile(archive) as z:
        assert z.namelist() == ["plot_01.py", wheel.name]
        assert z.read(wheel.name) == wheel.read_bytes()


@pytest.mark.slow
def test_a_downloaded_example_runs_with_the_installed_wheel(installed, wheel, tmp_path):
    reader = tmp_path / "reader"  # an empty folder: the downloaded script, nothing else
    reader.mkdir()
    shutil.copy(EXAMPLE, reader / EXAMPLE.name)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH")
    }
    env.update(
        # before site-packages, where this environment may hold the checkout (editable)
        PYTHONPATH=str(installed),
        FASHION_OPTIM_PROFILE="quick",
        FASHION_OPTIM_WORKERS="1",
        FASHION_OPTIM_CACHE=os.environ.get("FASHION_OPTIM_CACHE") or str(tmp_path / "cache"),
        MPLBACKEND="Agg",
    )
    which = subprocess.run(
        [
            sys.executable,
            "-c",
            "import fashion_optim; print(fashion_optim.__file__); print(fashion_optim.__version__)",
        ],
        cwd=reader,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    where, version = which.stdout.split()
    assert Path(where).resolve().is_relative_to(installed.resolve()), (
        f"the example would import the library from {where}, not from the installed wheel"
    )
    assert wheel.name == f"fashion_optim-{version}-py3-none-any.whl"

    done = subprocess.run(
        [sys.executable, EXAMPLE.name],
        cwd=reader,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-4000:]
