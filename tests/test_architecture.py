"""The architecture page's tables name every module of the package (docs/architecture.md)."""

from __future__ import annotations

from pathlib import Path

import fashion_optim

PACKAGE = Path(fashion_optim.__file__).resolve().parent
PAGE = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def test_the_architecture_page_names_every_module():
    text = PAGE.read_text()
    missing = [
        name
        for name in (p.stem for p in PACKAGE.glob("*.py"))
        if name != "__init__"
        and f"fashion_optim.{name}`" not in text
        and f"`{name}.py`" not in text
    ]
    missing += [
        f"experiments/{p.name}"
        for p in (PACKAGE / "experiments").glob("*.py")
        if f"`{p.name}`" not in text
    ]
    missing += [
        f"plotting/{p.name}"
        for p in (PACKAGE / "plotting").glob("*.py")
        if p.stem != "__init__" and f"(`{p.stem}`)" not in text
    ]
    assert not missing, f"docs/architecture.md does not describe {missing}: add a row"
