"""Developer tasks: ``nox`` (tests), ``nox -s lint``, ``nox -s docs``.

Reuse the environments while iterating: ``nox -R -s tests`` (a fresh one installs torch,
about 1.5 minutes and 5.5 GB).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (on the real Fashion-MNIST; see the README for the data)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


DOCS_USAGE = """\
nox -s docs [-- OPTIONS]
  --quick            quick profile (small runs; what CI builds)
  --fresh            empty the result cache first, so every figure is retrained
  --example PATTERN  run only the gallery examples whose path matches PATTERN (a regex)
  --executor ADDRESS train on the Dask scheduler at ADDRESS (e.g. tcp://host:8786)
                     instead of local processes (sets FASHION_OPTIM_EXECUTOR)
  --no-plot          build the pages without running any example
  --reference PATH   compare this build's record with the record at PATH (a record.jsonl
                     or a built site's folder): printed, and shown on the
                     reproducibility page (sets FASHION_OPTIM_REFERENCE)
  --write-reference  copy this build's record to the committed reference of its
                     profile (docs/reference/record-PROFILE.jsonl)
  --serve            serve the built HTML on http://localhost:8000 afterwards
"""

#: The committed reference records, one per profile: CI compares its quick build with
#: record-quick.jsonl (.ci/run).
REFERENCE = "docs/reference/record-{profile}.jsonl"


def _docs_options(posargs: list[str]) -> dict:
    opts = {
        "quick": False,
        "fresh": False,
        "example": None,
        "executor": None,
        "no_plot": False,
        "serve": False,
        "reference": None,
        "write_reference": False,
    }
    args = list(posargs)
    while args:
        arg = args.pop(0)
        if arg in ("--quick", "--fresh", "--no-plot", "--serve", "--write-reference"):
            opts[arg[2:].replace("-", "_")] = True
        elif arg in ("--example", "--executor", "--reference") and args:
            opts[arg[2:]] = args.pop(0)
        else:
            raise SystemExit(f"unknown docs option {arg!r}.\n{DOCS_USAGE}")
    return opts


def _build_site(session: nox.Session, opts: dict) -> str:
    env = {"FASHION_OPTIM_PROFILE": "quick" if opts["quick"] else "full"}
    if opts["executor"]:
        env["FASHION_OPTIM_EXECUTOR"] = opts["executor"]
    if opts["write_reference"] and (opts["example"] or opts["no_plot"]):
        session.error("--write-reference needs the whole site: drop --example and --no-plot.")
    if opts["reference"]:
        if not Path(opts["reference"]).exists():
            session.error(
                f"--reference {opts['reference']}: no such file or folder; give a record "
                "(record.jsonl) or a built site's folder."
            )
        env["FASHION_OPTIM_REFERENCE"] = str(Path(opts["reference"]).resolve())
    if opts["fresh"]:
        session.run("python", "-m", "fashion_optim", "cache", "--clear", env=env)
    out = "docs/_build/html"
    # Sphinx never deletes pages it no longer writes (viewcode, renamed examples), and it
    # builds every source it finds, generated ones included: start from an empty output
    # folder and without the generated sources of earlier builds (a renamed example's
    # page, a removed function's API stub), as a clean checkout would.
    for folder in (out, "docs/auto_gallery", "docs/api"):
        shutil.rmtree(folder, ignore_errors=True)
    # -E: a fresh environment each time (the banner and the profile change);
    # no -j: forked OpenMP threads hang torch builds.
    args = ["-b", "html", "-n", "-W", "--keep-going", "-T", "-E", "docs", out]
    if opts["example"]:
        args += ["-D", f"sphinx_gallery_conf.filename_pattern={opts['example']}"]
    if opts["no_plot"]:
        args += ["-D", "plot_gallery=0"]
    session.run("sphinx-build", *args, env=env)
    session.log(f"The site is in {out}/index.html; its record, {out}/record.jsonl")
    if opts["reference"]:  # the differences, here too (also on the reproducibility page)
        compare = ["python", "-m", "fashion_optim", "compare", opts["reference"], out]
        session.run(*compare, success_codes=[0, 1])
    if opts["write_reference"]:
        target = Path(REFERENCE.format(profile=env["FASHION_OPTIM_PROFILE"]))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(out) / "record.jsonl", target)
        session.log(f"The reference record is now {target}: commit it with the change.")
    return out


@nox.session
def docs(session: nox.Session) -> None:
    """Build the site, re-running every example: ``nox -s docs -- --help`` for options."""
    if "--help" in session.posargs:
        session.log(DOCS_USAGE)
        return
    opts = _docs_options(session.posargs)
    session.install("-e", ".[docs,dask]" if opts["executor"] else ".[docs]")
    out = _build_site(session, opts)
    if opts["serve"]:
        session.run("python", "-m", "http.server", "--directory", out, "8000")


@nox.session
def browser(session: nox.Session) -> None:
    """Build the quick site and test it in headless Chromium (Debian's ``chromium``).

    ``nox -s browser -- --no-build`` tests the site already in docs/_build/html; it then
    installs only the browser tools (no torch: the tests read the HTML, nothing else).
    """
    session.install(*nox.project.dependency_groups(nox.project.load_toml(), "browser"))
    out = "docs/_build/html"
    if "--no-build" not in session.posargs:
        session.install("-e", ".[docs]")
        out = _build_site(session, _docs_options(["--quick"]))
    args = [a for a in session.posargs if a != "--no-build"]
    # --confcutdir: tests/conftest.py (torch, the dataset) is not the browser tests' own.
    session.run(
        "pytest",
        "tests/browser",
        "--confcutdir=tests/browser",
        *args,
        env={"FASHION_OPTIM_SITE": out},
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks (not tests): throughput ratios, the float32 ceiling, the executors'
    overhead and scaling (the dask extra), site build times, the pinned kernels' cost."""
    session.install("-e", ".[docs,dask]")
    session.run("python", "benchmarks/run.py", *session.posargs)
    # the pin's cost and effect: pinned against unpinned, in alternation, in this one run
    session.run(
        "python", "benchmarks/pin.py", *(["--rounds", "1"] if "--quick" in session.posargs else [])
    )
