"""The build's record: every number the site publishes, as data, and a comparison of two.

A record is a JSON-lines file (``record.jsonl`` at the site's root), one object per
line, read with ``pandas.read_json(path, lines=True)``. Each line has a ``kind``:

``environment`` (one line)
    ``value``: format version, torch, numpy and Python versions, the pin
    (:mod:`fashion_optim.pin`), the processor, the data's checksum, the code hashes of
    each cached computation, the profile, the time of the build.
``glue``
    A value a note page glued: ``page``, ``name``, ``value`` (its text, as displayed).
``text``
    A sentence a chapter printed through :func:`fashion_optim.plotting.say`: ``page``,
    ``name`` (its order on the page), ``value``.
``run``
    A run the build used: ``name`` (the spec's), ``seed``, ``config`` (the resolved
    spec), ``config_id`` (its hash), ``test_acc``, ``test_loss``, ``history`` (per epoch:
    ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ``lr``, ``epoch_time``),
    ``batch_loss_sha`` and ``predictions_sha`` (SHA-256 of the per-batch losses' and of
    the test predictions' bytes), ``wall_time``.

``time`` is true on a line whose value measures time (a glued name or a printed number
followed by a unit of time); ``epoch_time`` and ``wall_time`` are times too. ``machine``
is true on a glued value that describes the machine, not a result (a name ending in
``_version``, or ``device``, ``workers``, ``data_source``, or starting with ``env_``). A
comparison lists both apart and never fails on them.

While a site builds, every process that runs experiments (the Sphinx process for the
gallery, a kernel per note page) appends its runs and sentences to the file that
``FASHION_OPTIM_RECORD`` names (:func:`note_results`, :func:`note_text`); the build
then :func:`assemble`\\ s the record from it and from the glue myst-nb saved.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .files import atomic_write

__all__ = [
    "ENV_GLUE",
    "ENV_PAGE",
    "ENV_RECORD",
    "ENV_REFERENCE",
    "FORMAT",
    "RECORD_NAME",
    "Comparison",
    "Difference",
    "assemble",
    "compare",
    "current",
    "environment",
    "glue_rows",
    "note_results",
    "note_text",
    "read",
    "write",
]

#: The file every process of a build appends its runs and printed sentences to.
ENV_RECORD = "FASHION_OPTIM_RECORD"
#: The folder of the glue files myst-nb writes (``jupyter_execute``), while a site builds.
ENV_GLUE = "FASHION_OPTIM_RECORD_GLUE"
#: The page being read while a site builds (a note page's kernel inherits it).
ENV_PAGE = "FASHION_OPTIM_RECORD_PAGE"
#: A record to compare the build with (``nox -s docs -- --reference PATH``).
ENV_REFERENCE = "FASHION_OPTIM_REFERENCE"
#: The record's file name in a built site.
RECORD_NAME = "record.jsonl"
#: The format's version (the environment line's ``value["format"]``).
FORMAT = 1
#: History fields kept per epoch (the per-batch ones are kept as a hash).
EPOCH_FIELDS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_time")
#: Fields of a run that measure time.
TIME_FIELDS = frozenset({"wall_time", "epoch_time"})
#: A glued name that measures time.
TIME_NAME = re.compile(r"(^|_)(time|times|seconds|minutes|wall|elapsed|duration)(_|$)")
#: A glued name that describes the machine that built the site, not a result.
MACHINE_NAME = re.compile(r"(_version$|^device$|^device_name$|^workers$|^data_source$|^env_)")
#: A printed number that measures time: followed by a unit of time.
_TIME_UNIT = re.compile(r"\s?(s|ms|sec|seconds?|min|minutes?|h|hours?)\b")
#: A printed number: optional sign, digits with optional thousands commas, decimals,
#: exponent.
_NUMBER = re.compile(r"(?<![\w.])[-\u2212]?\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][-+]?\d+)?")
#: The decimals that pages print accuracies and losses with: a difference in a run's
#: number is "beyond the last printed digit" when it shows at this many decimals.
PRINTED_DECIMALS = 4


# --------------------------------------------------------------------------- writing


def _append(rows: Iterable[Mapping[str, Any]]) -> None:
    path = os.environ.get(ENV_RECORD)
    if not path:
        return
    text = "".join(json.dumps(row, sort_keys=True, default=_plain) + "\n" for row in rows)
    if text:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # whole lines in one write, at the end of the file (O_APPEND): two processes
        # appending at once never mix their lines
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, text.encode("utf-8"))
        finally:
            os.close(fd)


def _plain(value: Any) -> Any:
    """JSON for numpy scalars and arrays, and anything else as its text."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _sha(data: Any) -> str:
    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest()[:16]


def _config_id(config: Mapping[str, Any]) -> str:
    text = json.dumps(config, sort_keys=True, default=_plain)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_row(result: Any, name: str = "") -> dict[str, Any]:
    """The record's line for one :class:`~fashion_optim.experiments.Result` of the spec
    named ``name``."""
    import numpy as np

    config = result.config.to_dict()
    history = result.history.to_dict()
    return {
        "kind": "run",
        "page": "",
        "name": name,
        "seed": int(result.seed),
        "config": config,
        "config_id": _config_id(config),
        "test_acc": float(result.test_acc),
        "test_loss": float(result.test_loss),
        "history": {k: [float(v) for v in history[k]] for k in EPOCH_FIELDS if k in history},
        "batch_loss_sha": _sha(np.asarray(history.get("batch_loss", []), dtype=np.float64)),
        "predictions_sha": _sha(np.asarray(result.test_predictions)),
        "wall_time": float(result.meta.get("wall_time", math.nan)),
        "time": False,
    }


def note_results(results: Sequence[Any], names: Sequence[str]) -> None:
    """Append the runs among ``results`` (of the specs ``names``) to the build's record,
    when ``FASHION_OPTIM_RECORD`` names one (a diverged run, an exception, is left out)."""
    if not os.environ.get(ENV_RECORD):
        return
    _append(
        run_row(r, name)
        for r, name in zip(results, names, strict=True)
        if hasattr(r, "history") and hasattr(r, "config")
    )


def _page() -> str:
    """The page running now: a gallery example's file name (sphinx-gallery's argv[0]),
    or the note page whose kernel this is (``FASHION_OPTIM_RECORD_PAGE``)."""
    name = Path(sys.argv[0] if sys.argv else "").name
    if name.startswith("plot_") and name.endswith(".py"):  # the gallery's file names
        return name.removesuffix(".py")
    return os.environ.get(ENV_PAGE, "")


_said: dict[str, int] = {}


def note_text(text: str) -> None:
    """Append a printed sentence to the build's record, when ``FASHION_OPTIM_RECORD``
    names one."""
    if not os.environ.get(ENV_RECORD):
        return
    page = _page()
    _said[page] = _said.get(page, 0) + 1
    row = {"kind": "text", "page": page, "name": f"{_said[page]:03d}", "value": text}
    _append([{**row, "time": False}])


# --------------------------------------------------------------------------- assembling


def environment(profile: str | None = None) -> dict[str, Any]:
    """The record's environment line: versions, pin, processor, data, code, profile."""
    import platform
    from datetime import datetime, timezone

    import numpy as np
    import torch

    from . import pin
    from .experiments import cache, current_profile, get_splits

    value = {
        "format": FORMAT,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "pin": pin.describe(),
        "pin_settings": pin.key(),
        "torch_capability": torch.backends.cpu.get_cpu_capability(),
        "processor": pin.processor(),
        "machine": platform.machine(),
        "data": get_splits().data_checksum,
        "code": {kind: cache.code_hash(kind) for kind in cache.KINDS},
        "profile": profile or current_profile().name,
        "built": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    return {"kind": "environment", "page": "", "name": "environment", "value": value}


def glue_rows(folder: str | Path, docnames: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The values the pages ``docnames`` (default: every page found) glued, from the
    ``DOCNAME.glue.json`` files myst-nb writes into ``folder`` (its ``jupyter_execute``
    folder). A figure is recorded by its name only (its value is ``None``)."""
    if docnames is None:
        docnames = [
            p.relative_to(folder).as_posix().removesuffix(".glue.json")
            for p in Path(folder).rglob("*.glue.json")
        ]
    rows = []
    for doc in sorted(docnames):
        path = Path(folder, *f"{doc}.glue.json".split("/"))
        if not path.is_file():
            continue
        for name, output in sorted(json.loads(path.read_text(encoding="utf-8")).items()):
            data = output.get("data", {})
            text = data.get("text/plain")
            if any(k.startswith("image/") for k in data):
                text = None
            elif isinstance(text, str) and len(text) >= 2 and text[0] == text[-1] in "'\"":
                text = text[1:-1]  # a glued str shows as its repr
            rows.append(
                {
                    "kind": "glue",
                    "page": doc,
                    "name": name,
                    "value": text,
                    "time": bool(TIME_NAME.search(name)),
                    "machine": bool(MACHINE_NAME.search(name)),
                }
            )
    return rows


def assemble(
    events: str | Path | None,
    glue: Sequence[Mapping[str, Any]] = (),
    env: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The record: ``env`` first, then the glued values, the printed sentences and the
    runs, each sorted; a run noted twice (asked for by two pages) is kept once."""
    rows: list[dict[str, Any]] = [dict(env)] if env else []
    runs: dict[tuple[str, int], dict[str, Any]] = {}
    texts: list[dict[str, Any]] = []
    if events and Path(events).is_file():
        for row in _lines(Path(events)):
            if row["kind"] == "run":
                runs.setdefault((row["config_id"], row["seed"]), row)
            elif row["kind"] == "text":
                texts.append(row)
    rows += sorted(glue, key=lambda r: (r["page"], r["name"]))
    rows += sorted(texts, key=lambda r: (r["page"], r["name"]))
    rows += sorted(runs.values(), key=lambda r: (r["name"], r["config_id"], r["seed"]))
    return rows


def current() -> list[dict[str, Any]]:
    """The record of the build running now, as far as it has got: for a page that shows
    it while the site builds (the pages built after it are missing). Empty outside a
    build."""
    events, glue = os.environ.get(ENV_RECORD), os.environ.get(ENV_GLUE)
    if not events:
        return []
    return assemble(events, glue_rows(glue) if glue else [], environment())


def write(rows: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Write ``rows`` as JSON lines to ``path`` (whole, or not at all); return it."""
    text = "".join(json.dumps(row, sort_keys=True, default=_plain) + "\n" for row in rows)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
    path.chmod(0o644)  # a site's file: readable by the web server (the temporary was 0600)
    return path


def _lines(path: Path) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"{path}, line {number}, is not JSON ({exc.msg}); a record holds one JSON "
                    "object per line: rebuild the site, or fix or remove the line."
                ) from None
            if not isinstance(row, dict) or "kind" not in row:
                raise ValueError(
                    f"{path}, line {number}, is not a record line (an object with a 'kind'); "
                    "is this a fashion-optim record?"
                )
            rows.append(row)
    return rows


def read(path: str | Path) -> list[dict[str, Any]]:
    """The lines of a record: a record file, or a built site's folder (its
    ``record.jsonl``)."""
    path = Path(path)
    if path.is_dir():
        if not (path / RECORD_NAME).is_file():
            raise FileNotFoundError(
                f"{path} is a folder without a {RECORD_NAME}: give a record file or a built "
                f"site's folder (e.g. docs/_build/html), built by this version's `nox -s docs`."
            )
        path = path / RECORD_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"no record at {path}: give a record file (record.jsonl) or a built site's folder."
        )
    return _lines(path)


# --------------------------------------------------------------------------- comparing


@dataclass(frozen=True)
class Difference:
    """One number (or text) that differs between two records.

    ``where`` names it (kind, page or run, name, field); ``a`` and ``b`` are the two
    values as recorded (``None`` where one record lacks it); ``delta`` is ``b - a`` for
    numbers; ``visible`` says whether the difference shows in the printed digits;
    ``ignored`` says why it is not counted: ``"time"`` (a measurement of time) or
    ``"machine"`` (a description of the machine), ``""`` when it counts.
    """

    where: str
    a: Any
    b: Any
    delta: float | None
    visible: bool
    ignored: str = ""


@dataclass
class Comparison:
    """Two records compared: the ``differences``, the number of values ``compared``, and
    the two environments (``env_a``, ``env_b``)."""

    differences: list[Difference] = field(default_factory=list)
    compared: int = 0
    env_a: dict[str, Any] = field(default_factory=dict)
    env_b: dict[str, Any] = field(default_factory=dict)

    @property
    def counted(self) -> list[Difference]:
        """The differences that count (neither measurements of time nor descriptions of
        the machine)."""
        return [d for d in self.differences if not d.ignored]

    @property
    def equal(self) -> bool:
        """Every number bitwise equal (measurements of time and the machine aside)."""
        return not self.counted

    @property
    def same_processor(self) -> bool:
        return bool(self.env_a) and self.env_a.get("processor") == self.env_b.get("processor")

    def rows(self) -> list[dict[str, Any]]:
        """The differences as table rows (for a :class:`pandas.DataFrame`)."""
        return [
            {
                "value": d.where,
                "A": d.a,
                "B": d.b,
                "B - A": d.delta,
                "beyond the printed digits": d.visible,
                "ignored": d.ignored,
            }
            for d in self.differences
        ]

    def report(self, a: str = "A", b: str = "B") -> str:
        """The comparison as text: environments, every difference, a summary."""
        lines = []
        for label, env in ((a, self.env_a), (b, self.env_b)):
            lines.append(f"{label}: {env_line(env)}")
        for k in sorted((set(self.env_a) | set(self.env_b)) - {"built"}):
            if self.env_a.get(k) != self.env_b.get(k):
                lines.append(
                    f"  environment differs in {k}: {self.env_a.get(k)!r} -> {self.env_b.get(k)!r}"
                )
        counted = self.counted
        times = sum(d.ignored == "time" for d in self.differences)
        machine = sum(d.ignored == "machine" for d in self.differences)
        for d in counted:
            if d.where.endswith(("(only in A)", "(only in B)")):
                lines.append(f"DIFF {d.where}: {_short(d.a if d.b is None else d.b)}")
                continue
            delta = "" if d.delta is None else f"  by {d.delta:+.3g}"
            shown = "beyond the printed digits" if d.visible else "within the printed digits"
            lines.append(f"DIFF {d.where}: {_short(d.a)} -> {_short(d.b)}{delta}  ({shown})")
        visible = sum(d.visible for d in counted)
        lines.append(
            f"{self.compared} values compared: "
            + (
                "every number bitwise equal"
                if not counted
                else f"{len(counted)} differ ({visible} beyond the printed digits)"
            )
            + f"; ignored: {times} measurements of time and {machine} descriptions of the "
            "machine that differ."
        )
        return "\n".join(lines)


def env_line(env: Mapping[str, Any]) -> str:
    """One line for an environment: profile, torch, pin, processor, data, code."""
    if not env:
        return "no environment line"
    code = env.get("code", {})
    code = code.get("run", "") if isinstance(code, dict) else code
    return (
        f"profile {env.get('profile')}, torch {env.get('torch')}, numpy {env.get('numpy')}, "
        f"{env.get('pin')}, on {env.get('processor')} ({env.get('machine')}), data "
        f"{str(env.get('data'))[:12]}, code {code}, built {env.get('built')}"
    )


def _short(value: Any, width: int = 70) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _decimals(token: str) -> int:
    mantissa = re.split("[eE]", token)[0]
    return len(mantissa.partition(".")[2])


def _number(token: str) -> float:
    return float(token.replace(",", "").replace("\u2212", "-"))


def _values(rows: Iterable[Mapping[str, Any]]) -> dict[str, tuple[Any, bool, str, str]]:
    """Every compared value by where it is: ``(value, ignored, kind, group)``, with kind
    ``"text"`` (a printed string), ``"raw"`` (a number stored whole) or ``"id"`` (a
    hash), and group the glued value, sentence or run it belongs to."""
    out: dict[str, tuple[Any, bool, str, str]] = {}
    for row in rows:
        kind = row.get("kind")
        if kind in ("glue", "text"):
            where = f"{kind} {row.get('page')}:{row.get('name')}"
            ignored = "time" if row.get("time") else "machine" if row.get("machine") else ""
            out[where] = (row.get("value"), ignored, "text", where)
        elif kind == "run":
            base = f"run {row.get('name')} seed {row.get('seed')} [{row.get('config_id')}]"
            for k in ("test_acc", "test_loss", "wall_time"):
                out[f"{base} {k}"] = (row.get(k), _time(k), "raw", base)
            for k in ("batch_loss_sha", "predictions_sha"):
                out[f"{base} {k}"] = (row.get(k), "", "id", base)
            for k, values in sorted((row.get("history") or {}).items()):
                for epoch, v in enumerate(values):
                    out[f"{base} history.{k}[{epoch}]"] = (v, _time(k), "raw", base)
    return out


def _same(a: Any, b: Any) -> bool:
    """Bitwise equal: NaN equals NaN, 0.0 differs from -0.0."""
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return a == b


def _time(field: str) -> str:
    return "time" if field in TIME_FIELDS else ""


def _compare_text(where: str, a: str, b: str, ignored: str) -> list[Difference]:
    """The numbers of two printed strings, one by one; the words, as a whole."""
    ta, tb = list(_NUMBER.finditer(a)), list(_NUMBER.finditer(b))
    words_a, words_b = _NUMBER.sub("#", a), _NUMBER.sub("#", b)
    if len(ta) != len(tb) or words_a != words_b:
        return [Difference(where, a, b, None, True, ignored)]
    out = []
    for i, (ma, mb) in enumerate(zip(ta, tb, strict=True)):
        if ma.group() == mb.group():
            continue
        why = ignored or ("time" if _TIME_UNIT.match(a, ma.end()) else "")
        out.append(
            Difference(
                f"{where} #{i + 1}",
                ma.group(),
                mb.group(),
                _number(mb.group()) - _number(ma.group()),
                True,  # a printed number that differs differs in its printed digits
                why,
            )
        )
    return out


def compare(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> Comparison:
    """Compare two records (lists of lines, as :func:`read` returns them).

    Every glued value and printed sentence is compared number by number (the words
    between them as a whole), every run by its configuration and seed, field by field;
    a value present in one record only is a difference too.

    Examples
    --------
    >>> a = [{"kind": "glue", "page": "p", "name": "acc", "value": "0.8891 ± 0.0044"}]
    >>> b = [{"kind": "glue", "page": "p", "name": "acc", "value": "0.8902 ± 0.0044"}]
    >>> [(d.where, d.a, d.b, round(d.delta, 4)) for d in compare(a, b).differences]
    [('glue p:acc #1', '0.8891', '0.8902', 0.0011)]
    >>> compare(a, a).equal
    True
    """
    env = lambda rows: next(  # noqa: E731
        (dict(r["value"]) for r in rows if r.get("kind") == "environment"), {}
    )
    va, vb = _values(a), _values(b)
    result = Comparison(compared=len(set(va) | set(vb)), env_a=env(a), env_b=env(b))
    scale = 10.0**PRINTED_DECIMALS
    groups = {side: {v[3] for v in values.values()} for side, values in (("A", va), ("B", vb))}
    said: set[str] = set()
    for where in sorted(set(va) | set(vb)):
        if where not in va or where not in vb:
            side, other = ("A", "B") if where in va else ("B", "A")
            value, ignored, _, group = (va if side == "A" else vb)[where]
            if group not in groups[other] and group != where:  # a whole run: said once
                if group in said:
                    continue
                said.add(group)
                where, value, ignored = group, "(the whole run)", ""
            result.differences.append(
                Difference(
                    f"{where} (only in {side})",
                    value if side == "A" else None,
                    value if side == "B" else None,
                    None,
                    True,
                    ignored,
                )
            )
            continue
        (x, tx, kind, _), (y, ty, _, _) = va[where], vb[where]
        if _same(x, y):
            continue
        ignored = tx or ty
        if kind == "text" and isinstance(x, str) and isinstance(y, str):
            result.differences += _compare_text(where, x, y, ignored)
        elif kind == "raw" and isinstance(x, (int, float)) and isinstance(y, (int, float)):
            visible = round(x * scale) != round(y * scale) if math.isfinite(x + y) else True
            result.differences.append(Difference(where, x, y, y - x, visible, ignored))
        else:
            result.differences.append(Difference(where, x, y, None, True, ignored))
    return result
