"""The note's prose carries no hand-typed results: every number comes from a glue."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted([DOCS / "index.md", *(DOCS / "note").glob("*.md")])

FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.S | re.M)  # code cells, code, math blocks
DIRECTIVE_LINE = re.compile(r"^(:{3,}.*|:\w[\w-]*:.*)$", re.M)  # ::: fences and :options:
FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.S)
ROLE = re.compile(r"\{[\w:-]+\}`[^`]*`")  # {glue:text}`name:.3f`, {cite:p}`key`, {doc}`x`
INLINE_CODE = re.compile(r"`[^`]*`")
MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.S)
LINK_TARGET = re.compile(r"\]\([^)]*\)")
# a decimal (0.826, .5), a percentage, or a "mean ± std" pair typed in the text
TYPED_RESULT = re.compile(r"(?<![\w.])\d*\.\d+(?![\w.])|\d+(\.\d+)?\s*%|±\s*\d")


def prose(text: str) -> str:
    """The Markdown text a reader sees as prose: no code, roles, math or link targets."""
    text = FRONT_MATTER.sub("", text)
    text = FENCE.sub("", text)
    text = DIRECTIVE_LINE.sub("", text)
    for pattern in (ROLE, INLINE_CODE, MATH, LINK_TARGET):
        text = pattern.sub("", text)
    return text


def test_there_are_note_pages():
    assert (DOCS / "index.md") in PAGES
    assert len(PAGES) >= 2


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_no_hand_typed_results_in_prose(page):
    found = [
        (n, line.strip())
        for n, line in enumerate(prose(page.read_text()).splitlines(), 1)
        if TYPED_RESULT.search(line)
    ]
    assert not found, f"typed numbers in the prose of {page.name} (glue them): {found}"


def test_the_check_catches_typed_numbers():
    typed = "The best validation accuracy was 0.826, or 82.6 %, 0.90 ± 0.01."
    glued = "The best was {glue:text}`best_acc:.3f`, with $\\beta = 0.9$ and `lr=0.01`."
    assert TYPED_RESULT.search(prose(typed))
    assert not TYPED_RESULT.search(prose(glued))
    cell = "```{code-cell} python\nx = 0.5\n```\n"
    assert not TYPED_RESULT.search(prose(cell))
    card = ":::{grid-item-card} Title\n:link: page\n\nIt reached 0.91 here.\n:::\n"
    assert TYPED_RESULT.search(prose(card))
