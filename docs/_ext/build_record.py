"""The build's record (``record.jsonl`` at the site's root): every number it published.

Before anything runs, the build names an events file in ``FASHION_OPTIM_RECORD``; every
process that runs experiments appends to it (the gallery runs in this process, each note
page in a kernel of its own, which inherits the variable): each run it used, each
sentence it printed (:mod:`fashion_optim.record`). When the build has finished, the
record is assembled from that file, the values the note pages glued (myst-nb's
``jupyter_execute/*.glue.json``) and this build's environment, and written into the site.

``FASHION_OPTIM_REFERENCE`` (``nox -s docs -- --reference PATH``) names a record to
compare this build with: the reproducibility page shows the comparison.
"""

from __future__ import annotations

import os
from pathlib import Path

from sphinx.util import logging

from fashion_optim import record

logger = logging.getLogger(__name__)

ENV_REFERENCE = record.ENV_REFERENCE


def _folders(app) -> tuple[Path, Path]:
    """The events file of this build, and myst-nb's folder of glue files."""
    build = Path(app.outdir).parent
    return build / "record" / "events.jsonl", build / "jupyter_execute"


def _start(app, config) -> None:
    events, glue = _folders(app)
    events.parent.mkdir(parents=True, exist_ok=True)
    events.unlink(missing_ok=True)  # this build's runs only
    # and this build's glued values only: a page that reads the record so far (the
    # reproducibility page) must not count the glue files an earlier build left behind
    for stale in glue.rglob("*.glue.json") if glue.is_dir() else ():
        stale.unlink()
    os.environ[record.ENV_RECORD] = str(events.resolve())
    os.environ[record.ENV_GLUE] = str(glue.resolve())
    reference = os.environ.get(ENV_REFERENCE, "").strip()
    if reference:
        path = Path(reference).expanduser().resolve()
        record.read(path)  # a missing or unreadable reference stops the build now
        os.environ[ENV_REFERENCE] = str(path)


def _reading(app, docname, source) -> None:
    # the kernel myst-nb starts for this page inherits it: its printed sentences say
    # which page printed them
    os.environ[record.ENV_PAGE] = docname


def _finish(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    events, glue = _folders(app)
    rows = record.assemble(
        events,
        record.glue_rows(glue, sorted(app.env.found_docs)),
        record.environment(),
    )
    path = record.write(rows, Path(app.outdir) / record.RECORD_NAME)
    logger.info(
        f"the build's record: {path} ({len(rows)} lines, {path.stat().st_size / 1024:.0f} kB)"
    )


def setup(app):
    app.connect("config-inited", _start)
    app.connect("source-read", _reading)
    app.connect("build-finished", _finish)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
