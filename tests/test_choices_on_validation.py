"""No page picks a best by a test metric.

Every choice goes through :func:`fashion_optim.experiments.best_on_validation` (which
refuses a test metric, see ``test_tuning.py``). This test reads the code of every chapter
and note page and fails on any selecting call (``max``, ``min``, ``sorted``, ``argmax``,
``idxmax``, ``sort_values``...) whose arguments or receiver mention a test metric.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SELECTORS = {
    "max",
    "min",
    "sorted",
    "sort",
    "argmax",
    "argmin",
    "nanargmax",
    "nanargmin",
    "argsort",
    "idxmax",
    "idxmin",
    "sort_values",
    "nlargest",
    "nsmallest",
    "best_on_validation",
    "rank_on_validation",
}
#: A test metric, in a name, an attribute or a string ("test_acc", "test loss", testAcc).
TEST_METRIC = re.compile(r"test[ _]?(acc|loss|err|score|metric)", re.I)
CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.S | re.M)


def _sources() -> dict[str, str]:
    out = {str(p.relative_to(ROOT)): p.read_text() for p in sorted(ROOT.glob("gallery/*.py"))}
    for page in sorted((ROOT / "docs").rglob("*.md")):
        if "_build" in page.parts or "auto_gallery" in page.parts:
            continue
        cells = CELL.findall(page.read_text())
        if cells:
            # one cell per block, blank lines keep the line numbers apart (approximately)
            out[str(page.relative_to(ROOT))] = "\n\n".join(
                "\n".join(line for line in cell.splitlines() if not line.startswith(":"))
                for cell in cells
            )
    return out


def _mentions_test(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        text = (
            sub.id
            if isinstance(sub, ast.Name)
            else sub.attr
            if isinstance(sub, ast.Attribute)
            else sub.value
            if isinstance(sub, ast.Constant) and isinstance(sub.value, str)
            else ""
        )
        if TEST_METRIC.search(text):
            return True
    return False


def _selections_on_test(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name not in SELECTORS:
            continue
        parts = [*node.args, *(k.value for k in node.keywords)]
        if isinstance(func, ast.Attribute):
            parts.append(func.value)  # df.sort_values(...), test_accs.argmax()
        if any(_mentions_test(part) for part in parts):
            found.append((node.lineno, ast.unparse(node)[:120]))
    return found


SOURCES = _sources()


def test_the_check_sees_every_chapter_and_note_page():
    assert len([s for s in SOURCES if s.startswith("gallery/")]) >= 5
    assert {"docs/note/results.md", "docs/note/findings.md", "docs/index.md"} <= set(SOURCES)


@pytest.mark.parametrize(
    "code, flagged",
    [
        ("best = max(runs, key=lambda k: runs[k].test_acc[0])", True),
        ("table.sort_values('test acc')", True),
        ("i = np.argmax(test_accs)", True),
        ("ranked = sorted(rows, key=lambda r: r['test_acc'])", True),
        ("experiments.best_on_validation(runs, 'test_acc')", True),
        ("best = experiments.best_on_validation(runs)", False),
        ("best = max(val_last, key=val_last.get)", False),
        ("print(f'{runs[best].test_acc[0]:.4f}')", False),
        ("smallest = torch.bincount(data.test_labels).min()", False),
    ],
)
def test_the_check_flags_a_choice_by_a_test_metric(code, flagged):
    assert bool(_selections_on_test(code)) is flagged


@pytest.mark.parametrize("page", sorted(SOURCES))
def test_no_page_chooses_by_a_test_metric(page):
    found = _selections_on_test(SOURCES[page])
    assert not found, (
        f"{page} selects by a test metric (choose with experiments.best_on_validation; "
        f"a table shown in order is sorted by a validation metric): {found}"
    )
