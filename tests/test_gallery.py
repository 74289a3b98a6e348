"""Every gallery example runs as a reader downloads it: the .py and the .ipynb.

Both run in an empty folder, in the quick profile. The notebook reuses what the script
trained, as a reader's second run would. The result cache is a temporary one, unless
``FASHION_OPTIM_CACHE`` names one (CI does, so its site build then trains nothing new).
"""

from __future__ import annotations

import ast
import json
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


# Agg, except that plt.show() saves the figures it shows (and closes them, as the
# notebook's inline backend does), so the test can count what a reader's run shows.
SHOW_BACKEND = """
import os
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.backends.backend_agg import FigureCanvasAgg as FigureCanvas  # noqa: F401


def show(*args, **kwargs):
    out = Path(os.environ["SHOWN_FIGURES"])
    figures = [plt.figure(num) for num in plt.get_fignums()]
    with open(out / "show.log", "a") as log:  # one line per call: each figure's axes
        log.write(" ".join(str(len(fig.axes)) for fig in figures) + "\\n")
    for fig in figures:
        fig.savefig(out / f"figure_{len(list(out.glob('*.png'))):03d}.png")
    plt.close("all")
"""


def _show_calls(source: str) -> int:
    """How many ``plt.show()`` calls the code in ``source`` makes (comments and text aside)."""
    return sum(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "show"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "plt"
        for node in ast.walk(ast.parse(source))
    )


def _run_script(script: Path, env: dict, shown: Path) -> subprocess.CompletedProcess:
    """Run ``script`` in its folder with the backend that saves what plt.show() shows."""
    backend = shown.parent / "backend"
    backend.mkdir()
    (backend / "show_saves_backend.py").write_text(SHOW_BACKEND)
    shown.mkdir()
    env = dict(env)
    env["MPLBACKEND"] = "module://show_saves_backend"
    env["SHOWN_FIGURES"] = str(shown)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(backend), env.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, script.name],
        cwd=script.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )


def _check_script_run(done: subprocess.CompletedProcess, source: str, shown: Path) -> int:
    """The script exited cleanly, printed, and each plt.show() showed a real figure; returns
    how many figures it showed."""
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip(), "the example printed nothing"
    log = shown / "show.log"
    shows = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    assert len(shows) >= _show_calls(source) >= 1, (shows, done.stdout[-2000:])
    assert all(shows), f"a plt.show() with no figure open (axes per figure: {shows})"
    assert all(int(n) >= 1 for axes in shows for n in axes), f"an empty figure: {shows}"
    figures = sorted(shown.glob("*.png"))
    assert len(figures) == sum(map(len, shows))
    for png in figures:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    return len(figures)


def _check_executed_notebook(path: Path, figures: int) -> None:
    """No cell raised; every cell that calls plt.show() displays a PNG per call, and the
    notebook displays at least as many figures as the script showed."""
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    pngs = 0
    for i, cell in enumerate(cells):
        source = "".join(cell["source"])
        outputs = cell.get("outputs", [])
        errors = [o for o in outputs if o["output_type"] == "error"]
        assert not errors, f"code cell {i} raised {errors[0]['ename']}: {errors[0]['evalue']}"
        images = sum("image/png" in o.get("data", {}) for o in outputs)
        code = "\n".join(ln for ln in source.splitlines() if not ln.startswith(("%", "!")))
        calls = _show_calls(code)
        assert images >= calls, f"code cell {i} calls plt.show() {calls}x, shows {images} PNGs"
        pngs += images
    assert pngs >= figures, f"the notebook shows {pngs} figures, the script {figures}"


def test_gallery_has_examples():
    assert EXAMPLES, "gallery/ has no plot_*.py example"


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_as_downloaded(example, tmp_path, reader_env):
    # the .py, as downloaded, in an empty folder
    run = tmp_path / "run"
    run.mkdir()
    script = run / example.name
    shutil.copy(example, script)
    done = _run_script(script, reader_env, tmp_path / "shown")
    figures = _check_script_run(done, example.read_text(), tmp_path / "shown")

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
        cwd=run,
        env=reader_env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    _check_executed_notebook(run / "executed.ipynb", figures)
