"""Developer tasks: ``nox`` (tests), ``nox -s lint``, ``nox -s docs``.

Reuse the environments while iterating: ``nox -R -s tests`` (a fresh one installs torch,
about 1.5 minutes and 5.5 GB).
"""

from __future__ import annotations

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
