"""Every gallery example runs as a reader downloads it: the .py and the .ipynb.

Both run in an empty folder, in the quick profile. The notebook reuses what the script
trained, as a reader's second run would. The result cache is a temporary one, unless
``FASHION_OPTIM_CACHE`` names one (CI does, so its site build then trains nothing new).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "gallery").glob("plot_*.py"))


def _first_notebook_cell() -> str:
    """The first notebook cell the site's notebooks get, read from docs/conf.py."""
    tree = ast.parse((ROOT / "docs" / "conf.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == (
            "FIRST_NOTEBOOK_CELL"
        ):
            # conf.py puts the name of the wheel it built in place of {wheel}
            cell = ast.literal_eval(node.value)
            return cell.replace("{wheel}", "fashion_optim-<version>-py3-none-any.whl")
    raise AssertionError("docs/conf.py defines no FIRST_NOTEBOOK_CELL")


@pytest.fixture(scope="module")
def reader_env(tmp_path_factory):
    env = dict(os.environ)
    env.update(
        FASHION_OPTIM_PROFILE="quick",
        FASHION_OPTIM_CACHE=os.environ.get("FASHION_OPTIM_CACHE")
        or str(tmp_path_factory.mktemp("cache")),
        MPLBACKEND="Agg",
        PYTHONWARNINGS="error::DeprecationWarning:fashion_optim",
    )
    # A reader's default: the examples train in worker processes from a script with no
    # main guard (the tests' own FASHION_OPTIM_WORKERS=1 does not apply here).
    env.pop("FASHION_OPTIM_WORKERS", None)
    return env


def test_gallery_has_examples():
    assert EXAMPLES, "gallery/ has no plot_*.py example"


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_as_downloaded(example, tmp_path, reader_env):
    # the .py, as downloaded, in an empty folder
    script = tmp_path / example.name
    shutil.copy(example, script)
    done = subprocess.run(
        [sys.executable, script.name],
        cwd=tmp_path,
        env=reader_env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-4000:]

    # the .ipynb, converted the way the site converts it, executed top to bottom
    from sphinx_gallery.notebook import python_to_jupyter_cli

    python_to_jupyter_cli(
        [str(script)],
        sphinx_gallery_conf={
            "first_notebook_cell": _first_notebook_cell(),
            "remove_config_comments": True,
        },
    )
    notebook = script.with_suffix(".ipynb")
    assert notebook.exists()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--output",
            "executed.ipynb",
            notebook.name,
        ],
        cwd=tmp_path,
        env=reader_env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / "executed.ipynb").stat().st_size > notebook.stat().st_size
