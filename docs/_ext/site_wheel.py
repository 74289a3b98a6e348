"""The library's wheel, built by every docs build and published with the site.

A reader who downloads a chapter (its ``.py``, its ``.ipynb`` or a zip of them) needs the
library to run it; the site offers it beside them. ``docs/conf.py`` builds the wheel with
:func:`build_wheel` when the build starts and sets ``site_wheel`` to it; this extension
then

* offers it in the download box at the foot of every gallery page (the gallery's index
  included) and in the "Download" links of the secondary sidebar (sphinx-gallery's
  ``sg_download_links``), as ``_downloads/<wheel>``, a link relative to each page;
* copies it to ``_downloads/<wheel>`` of the site and into every zip the site offers
  (sphinx-gallery's "download all examples" archives and each example's own), when the
  build ends.

``tests/test_wheel.py`` builds the wheel with the same function, installs it and runs a
downloaded example with it.
"""

from __future__ import annotations

import email.parser
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

#: Where in the site the wheel is published (and where sphinx-gallery puts its downloads).
DOWNLOADS = "_downloads"

# What setuptools reads to build the wheel, besides the package tree under src/.
_PROJECT_FILES = ("pyproject.toml", "setup.py", "setup.cfg", "MANIFEST.in")
_PROJECT_GLOBS = ("README*", "LICEN[CS]E*", "COPYING*", "NOTICE*", "AUTHORS*")


def build_wheel(root: str | Path, outdir: str | Path) -> Path:
    """Build the wheel of the project at ``root`` into ``outdir``, emptied first.

    The build runs setuptools' PEP 517 backend in a subprocess, without build isolation
    (no network: setuptools, which the ``docs`` and ``test`` extras require, must be
    installed), on a copy of the project's metadata files and of ``src/``. Building on a
    copy leaves no ``build/`` or ``*.egg-info`` in the checkout, and no file that an earlier
    build left in ``build/lib`` (a module since removed or renamed) can slip into the
    wheel: it holds exactly the code under ``src/`` now. Returns the wheel's path.
    """
    root, outdir = Path(root).resolve(), Path(outdir).resolve()
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="fashion-optim-wheel-") as tmp:
        tree = Path(tmp) / "project"
        tree.mkdir()
        files = [root / name for name in _PROJECT_FILES]
        files += [p for pattern in _PROJECT_GLOBS for p in root.glob(pattern)]
        for file in files:
            if file.is_file():
                shutil.copy2(file, tree / file.name)
        shutil.copytree(
            root / "src",
            tree / "src",
            ignore=shutil.ignore_patterns("__pycache__", "*.py[cod]", "*.egg-info"),
        )
        code = "import sys; from setuptools import build_meta; build_meta.build_wheel(sys.argv[1])"
        done = subprocess.run(
            [sys.executable, "-c", code, str(outdir)],
            cwd=tree,
            capture_output=True,
            text=True,
        )
    wheels = sorted(outdir.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        raise RuntimeError(
            f"building the wheel of {root} failed (setuptools>=70.1 must be installed: "
            f"pip install -e .[docs]):\n{(done.stdout + done.stderr)[-3000:]}"
        )
    return wheels[0]


def wheel_metadata(wheel: str | Path) -> email.message.Message:
    """The core metadata (``*.dist-info/METADATA``) of a wheel."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(archive.read(name).decode("utf-8"))


def project_urls(wheel: str | Path) -> dict[str, str]:
    """The wheel's ``[project.urls]`` (from pyproject.toml), label to URL."""
    urls = {}
    for entry in wheel_metadata(wheel).get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        urls[label.strip()] = url.strip()
    return urls


def add_to_zip(archive: str | Path, wheel: str | Path) -> None:
    """Put ``wheel`` at the top of the zip ``archive``, replacing any wheel already there."""
    archive, wheel = Path(archive), Path(wheel)
    with zipfile.ZipFile(archive) as old:
        kept = [(i, old.read(i)) for i in old.infolist() if not i.filename.endswith(".whl")]
    new = archive.with_name(archive.name + ".new")
    with zipfile.ZipFile(new, "w", zipfile.ZIP_DEFLATED) as out:
        for info, data in kept:
            out.writestr(info, data)
        out.write(wheel, wheel.name, compress_type=zipfile.ZIP_STORED)  # a wheel is a zip
    new.replace(archive)


# -- Sphinx --------------------------------------------------------------------------

_FOOTERS = {"sphx-glr-footer-example", "sphx-glr-footer-gallery"}


def _wheel_name(app) -> str | None:
    if app.builder.format != "html" or not app.config.site_wheel:
        return None
    return Path(app.config.site_wheel).name


def _offer_in_footers(app, doctree, docname: str) -> None:
    """Add the wheel to the download boxes that sphinx-gallery puts at a page's foot."""
    from docutils import nodes
    from sphinx import addnodes

    name = _wheel_name(app)
    if name is None:
        return
    for footer in list(doctree.findall(nodes.container)):
        if not _FOOTERS & set(footer["classes"]):
            continue
        text = f"Download the library: {name}"
        link = addnodes.download_reference(
            "",
            "",
            nodes.literal(text, text, classes=["xref", "download"]),
            filename=name,  # the writer makes it _downloads/<name>, relative to the page
            reftarget=name,
        )
        footer += nodes.container(
            "",
            nodes.paragraph("", "", link),
            classes=["sphx-glr-download", "sphx-glr-download-wheel"],
        )


def _offer_in_sidebar(app, pagename, templatename, context, doctree) -> None:
    """Add the wheel to the links of sphinx-gallery's ``sg_download_links`` component."""
    name = _wheel_name(app)
    links_of = context.get("get_download_links")
    if name is None or links_of is None:
        return

    def get_download_links():
        links = links_of()
        if links:  # a page that offers an example's (or the gallery's) downloads
            links["wheel"] = {
                "link": f"{DOWNLOADS}/{name}",
                "label": "the library (wheel)",
                "title": f"{name}: pip install it to run the examples",
            }
        return links

    context["get_download_links"] = get_download_links


def _publish(app, exception) -> None:
    """Copy the wheel into the site and into every zip the site offers."""
    name = _wheel_name(app)
    if exception is not None or name is None:
        return
    wheel = Path(app.config.site_wheel)
    downloads = Path(app.outdir) / DOWNLOADS
    downloads.mkdir(parents=True, exist_ok=True)
    for old in downloads.glob("*.whl"):  # a wheel of another version, from a former build
        old.unlink()
    shutil.copy2(wheel, downloads / name)
    # Sphinx copies each :download: file to _downloads/<hash>/<name>; the site's zips are
    # sphinx-gallery's: all examples, as .py and as .ipynb, and each example's own
    for archive in downloads.glob("*/*.zip"):
        add_to_zip(archive, wheel)


def setup(app):
    # The wheel to publish, built by conf.py (with build_wheel) before the build starts.
    app.add_config_value("site_wheel", "", "html", types=[str])
    app.connect("doctree-resolved", _offer_in_footers)
    # after sphinx-gallery's own handler (priority 500), which defines the getter
    app.connect("html-page-context", _offer_in_sidebar, priority=600)
    app.connect("build-finished", _publish)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
