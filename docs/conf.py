"""Sphinx configuration of the fashion-optim site.

The profile (``FASHION_OPTIM_PROFILE``: ``full`` or ``quick``) decides how big the runs
behind every figure are; a banner on every page says which one built the site.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import sys
from pathlib import Path

# fashion_optim first: it pins the CPU kernels (fashion_optim.pin) before torch and numpy
# load, in this process (the gallery's) and in every process started from it.
import fashion_optim  # isort: skip
import torch

from fashion_optim import pin
from fashion_optim.experiments import TRAIN_THREADS, current_profile, default_workers, environment
from fashion_optim.experiments.executors import ENV_EXECUTOR, executor_from_env

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))

from offline_inventories import write_all
from site_wheel import build_wheel, project_urls

# -- Project -------------------------------------------------------------------------

project = "fashion-optim"
author = "the fashion-optim developers"
copyright = f"{_dt.date.today().year}, {author}"
release = version = fashion_optim.__version__

# The library's wheel, built from the checkout now and published with the site, so that
# a reader who downloads a chapter can install what it imports (docs/_ext/site_wheel.py).
site_wheel = str(build_wheel(HERE.parent, HERE / "_build" / "wheel"))
WHEEL = Path(site_wheel).name
# The project's addresses, from pyproject.toml's [project.urls]: none yet.
PROJECT_URLS = project_urls(site_wheel)

PROFILE = current_profile()
ENV = environment()
# A Dask scheduler named by FASHION_OPTIM_EXECUTOR (nox -s docs -- --executor ADDRESS) is
# reached now: a bad address stops the build before any page trains.
EXECUTOR = os.environ.get(ENV_EXECUTOR, "").strip()
executor_from_env()
BUILT = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

# -- Extensions ----------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx_gallery.gen_gallery",
    "myst_nb",
    "sphinx_design",
    "sphinx_copybutton",
    "sphinxcontrib.bibtex",
    "site_wheel",
    "page_timings",  # per page wall and CPU time, logged at the end, docs/_build/timings.json
    "build_record",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
exclude_patterns = [
    "_build",
    "jupyter_execute",
    # sphinx-gallery writes a notebook beside every example; myst-nb must not read it
    "auto_gallery/*.ipynb",
    "auto_gallery/**/*.ipynb",
    "**.ipynb_checkpoints",
]
templates_path = ["_templates"]

# -- API reference -------------------------------------------------------------------

API_MODULES = (
    "data",
    "batches",
    "models",
    "training",
    "recorders",
    "device",
    "files",
    "ewma",
    "optimizers",
    "lr",
    "lr_finder",
    "suggest",
    "stats",
    "toys",
    "landscape",
    "theory",
    "curvature",
    "experiments",
    "plotting",
    "pin",
    "record",
)


def _write_api_pages() -> None:
    """One page per module, listing its ``__all__``; autosummary makes a page per member.

    (autosummary's own ``:recursive:`` mode documents a module that conf.py already
    imported as a plain attribute, so the module pages are written here.)
    """
    import importlib

    folder = HERE / "api"
    folder.mkdir(exist_ok=True)
    for short in API_MODULES:
        name = f"fashion_optim.{short}"
        module = importlib.import_module(name)
        members = "\n".join(f"   {m}" for m in module.__all__)
        text = (
            f"{name}\n{'=' * len(name)}\n\n.. automodule:: {name}\n   :no-members:\n\n"
            f".. currentmodule:: {name}\n\n.. autosummary::\n   :toctree: generated\n"
            f"   :nosignatures:\n\n{members}\n"
        )
        page = folder / f"{name}.rst"
        if not page.exists() or page.read_text() != text:
            page.write_text(text)


_write_api_pages()


#: The packages whose ``__init__`` re-exports constants from their modules.
_REEXPORTS = {
    "fashion_optim.experiments": (
        "profiles",
        "specs",
        "train",
        "studies",
        "runner",
        "cache",
        "executors",
        "selection",
        "tuning",
    ),
    "fashion_optim.plotting": (
        "style",
        "axes",
        "tables",
        "figures",
        "sweeps",
        "rangetests",
        "schedules",
        "theory",
        "adam",
    ),
}


def _reexported_doc_comment(app, what, name, obj, options, lines):
    """The ``#:`` comment of a constant that a package re-exports from one of its
    modules (autodoc looks for it in the package, and would show the docstring of
    ``dict`` or ``int`` instead)."""
    package, _, short = name.rpartition(".")
    if what not in ("data", "attribute") or package not in _REEXPORTS:
        return
    from sphinx.pycode import ModuleAnalyzer

    for sub in _REEXPORTS[package]:
        docs = ModuleAnalyzer.for_module(f"{package}.{sub}").find_attr_docs()
        if ("", short) in docs:
            lines[:] = [line for line in docs[("", short)] if line is not None]
            return


autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autoclass_content = "class"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_preprocess_types = True
napoleon_type_aliases = {
    "array_like": ":term:`array_like <numpy:array_like>`",
    "array-like": ":term:`array-like <numpy:array_like>`",
    "path-like": ":class:`os.PathLike`",
    "mapping": ":class:`~collections.abc.Mapping`",
    "sequence": ":class:`~collections.abc.Sequence`",
    "iterable": ":class:`~collections.abc.Iterable`",
    "callable": ":class:`~collections.abc.Callable`",
    "History": ":class:`~fashion_optim.training.History`",
    "Profile": ":class:`~fashion_optim.experiments.Profile`",
    "Record": ":class:`~fashion_optim.experiments.Record`",
    "Spec": ":class:`~fashion_optim.experiments.Spec`",
    "Plane": ":class:`~fashion_optim.landscape.Plane`",
    "Surface": ":class:`~fashion_optim.toys.Surface`",
    "MeasuredRate": ":class:`~fashion_optim.theory.MeasuredRate`",
    "Optimum": ":class:`~fashion_optim.theory.Optimum`",
}
# Words that numpydoc type lines use but are not objects.
nitpick_ignore_regex = [
    ("py:class", r"optional|default.*|path-like|shape.*|of|or|\.\.\."),
    # shape annotations in type lines, e.g. "array_like, shape (T, ...)"
    ("py:class", r"\(\w*|\(\.*|\.*\)|\w+\)|T|k|P"),
    ("py:class", r"numpy\._?typing\..*|NDArray|ArrayLike|np\..*|nn\..*|Interval|Path"),
    ("py:class", r"torch\.optim\.optimizer\..*|torch\.nn\.parameter\..*"),
    ("py:class", r"torch\.optim\.lr_scheduler\.\w*LRScheduler"),
    ("py:class", r"fashion_optim\.\w+\._\w+|_\w+"),
    ("py:obj", r"fashion_optim\.\w+\._\w+"),
    ("py:.*", r"typing\..*|collections\.abc\..*"),
    # not in the offline inventories
    ("py:class", r"concurrent\.futures\..*|pandas\..*"),
]

# -- Intersphinx: published inventories first, local ones when offline ----------------

_INV = write_all(HERE / "_build" / "inventories")
intersphinx_mapping = {
    "python": ("https://docs.python.org/3/", (None, str(_INV["python"]))),
    "torch": ("https://docs.pytorch.org/docs/stable/", (None, str(_INV["torch"]))),
    "numpy": ("https://numpy.org/doc/stable/", (None, str(_INV["numpy"]))),
    "matplotlib": ("https://matplotlib.org/stable/", (None, str(_INV["matplotlib"]))),
    "torchvision": ("https://docs.pytorch.org/vision/stable/", (None, str(_INV["torchvision"]))),
}
intersphinx_timeout = 5

# -- MathJax, served with the site ---------------------------------------------------

# The equations must render offline too (CI, a laptop on a train): MathJax 3 comes from
# the django-static-mathjax wheel (static files only) instead of a CDN.


def _offline_mathjax() -> Path:
    import shutil

    import mathjax  # the django-static-mathjax distribution

    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    out = HERE / "_build" / "mathjax_static"
    target = out / "mathjax"
    if not (target / "tex-mml-chtml.js").exists():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(es5 / "tex-mml-chtml.js", target)
        for sub in ("input", "output", "ui", "a11y", "adaptors"):
            if (es5 / sub).is_dir():
                shutil.copytree(es5 / sub, target / sub, dirs_exist_ok=True)
    return out


html_static_path = ["_static", str(_offline_mathjax())]
mathjax_path = "mathjax/tex-mml-chtml.js"

# -- sphinx-gallery ------------------------------------------------------------------

# The first cell of every downloadable notebook (tests/test_gallery.py reads it too);
# {wheel} stands for the wheel's file name. No %pip line runs: a notebook executed
# offline, or with the library already installed, must not reach for the network.
FIRST_NOTEBOOK_CELL = (
    "# This notebook needs the fashion-optim library. Install the wheel offered beside it\n"
    "# on the site (saved into the folder of this notebook), e.g. from a cell:\n"
    "#     %pip install {wheel}\n"
    "# or, once fashion-optim is published on a package index: %pip install fashion-optim\n"
    "%matplotlib inline"
)

sphinx_gallery_conf = {
    "examples_dirs": ["../gallery"],
    "gallery_dirs": ["auto_gallery"],
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    # sphinx-gallery re-runs an example only when its own file changed; a change in
    # src/ must never leave a stale figure, so run every example on every build and
    # let the experiment cache make that cheap.
    "run_stale_examples": True,
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "remove_config_comments": True,
    # no 2x files: figures are saved at 200 dpi (plotting.STYLE), already about twice the
    # column's width in pixels; 2x files (400 dpi) doubled the bytes a hi-dpi screen loads
    # (chapter 2 weighed 5.9 MB there) and the time spent saving figures
    "image_srcset": [],
    "download_all_examples": True,
    "doc_module": ("fashion_optim",),
    "backreferences_dir": "api/backreferences",
    "reference_url": {"fashion_optim": None},
    "show_memory": False,
    # its timing pages load jQuery and DataTables from CDNs; the reproducibility page
    # tabulates the same times from the examples' own pages instead
    "write_computation_times": False,
    # an animation a chapter keeps in a variable becomes matplotlib's JavaScript player,
    # its frames embedded in the page (no video codec, no server): the frames' number and
    # size (fashion_optim.plotting.PathAnimation) set the page's weight, which the browser
    # tests keep within 5 MB, well under matplotlib's animation.embed_limit of 20 MB.
    # docs/_ext/animation_scraper.py embeds it; sphinx-gallery's own animation support
    # (matplotlib_animations) would also save a GIF of it that the site never shows
    # (about 40 % of the players' build time, and ffmpeg's absence logged)
    "matplotlib_animations": False,
    "image_scrapers": ("animation_scraper.scrape",),
    # page_timings times each example (wall and CPU, the workers' included) before and after
    "reset_modules": ("matplotlib", "page_timings.gallery_example"),
    "reset_modules_order": "both",
    "first_notebook_cell": FIRST_NOTEBOOK_CELL.replace("{wheel}", WHEEL),
}

# -- myst-nb -------------------------------------------------------------------------

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "substitution"]
nb_execution_mode = "force"  # figures and numbers are always fresh; the experiment cache
nb_execution_timeout = 3600  # keeps re-execution cheap
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
# Markdown that code cells display (tables, admonitions) is parsed as MyST, not CommonMark
nb_render_markdown_format = "myst"
nb_execution_excludepatterns = ["auto_gallery/*"]

# -- Bibliography --------------------------------------------------------------------

bibtex_bibfiles = ["references.bib"]
bibtex_default_style = "unsrt"
bibtex_reference_style = "author_year"

# -- HTML ----------------------------------------------------------------------------

_profile_note = (
    "the published profile"
    if PROFILE.name == "full"
    else "<strong>the quick profile: small runs for checking, not the published numbers</strong>"
)
html_theme = "pydata_sphinx_theme"
html_title = "fashion-optim"
html_favicon = "_static/favicon.svg"
numfig = True
html_css_files = ["custom.css"]
html_theme_options = {
    "announcement": (
        f"Built {BUILT} with {_profile_note} ({PROFILE.description}), torch "
        f"{torch.__version__} on {ENV['device']} ({pin.describe()}), training "
        f"{TRAIN_THREADS} thread per run "
        + (
            f"on the Dask cluster at {EXECUTOR}."
            if EXECUTOR
            else f"and up to {default_workers()} runs at once."
        )
    ),
    "navbar_end": ["theme-switcher", "navbar-icon-links"],
    # the project's addresses in the header, once pyproject.toml lists them
    "icon_links": [
        {
            "name": label,
            "url": url,
            "icon": "fa-brands fa-github" if "github.com" in url else "fa-solid fa-link",
        }
        for label, url in PROJECT_URLS.items()
    ],
    # the download links render only on example pages
    "secondary_sidebar_items": ["page-toc", "sg_download_links"],
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_context = {"default_mode": "auto"}
html_show_sourcelink = False

# Used by the note pages: which profile built them.
os.environ.setdefault("FASHION_OPTIM_PROFILE", PROFILE.name)


def _break_api_titles_after_dots(app, pagename, templatename, context, doctree) -> None:
    """An API page's title is the member's dotted path (up to 46 characters at 2.5rem,
    wider than the column): let it wrap after a dot, not mid-name (custom.css only lets
    headings wrap anywhere when nothing better is left)."""
    if pagename.startswith("api/") and "body" in context:
        context["body"] = re.sub(
            r"<h1>([\w.]+)(?=<a class=\"headerlink\")",
            lambda m: "<h1>" + m[1].replace(".", ".<wbr>"),
            context["body"],
            count=1,
        )


#: The stylesheet matplotlib's JavaScript player links from a CDN for its buttons' icons.
_PLAYER_ICONS_CDN = re.compile(
    r'<link rel="stylesheet"\s+href="https://maxcdn\.bootstrapcdn\.com/font-awesome/[^"]*">'
)


def _player_icons_from_the_theme(app, docname, source) -> None:
    """Drop the CDN stylesheet from the animations' players: the site asks no other host
    for anything, and the theme's own Font Awesome has the buttons' icons (``fa fa-play``
    and the others). A downloaded notebook keeps the link."""
    if docname.startswith("auto_gallery/"):
        source[0] = _PLAYER_ICONS_CDN.sub("", source[0])


def setup(app) -> None:
    app.connect("autodoc-process-docstring", _reexported_doc_comment)
    app.connect("source-read", _player_icons_from_the_theme)
    app.connect("html-page-context", _break_api_titles_after_dots)
