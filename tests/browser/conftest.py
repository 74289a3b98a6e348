"""The built site, served on localhost, and headless Chromium driven by Playwright.

``nox -s browser`` builds the quick site and sets ``FASHION_OPTIM_SITE``; without that
variable ``tests/conftest.py`` does not collect this folder. Chromium is Debian's
(``apt-get install chromium``), or the one named by ``FASHION_OPTIM_CHROMIUM``; the
browser download of ``playwright install`` is not needed.

Every page is visited once per session (:func:`visit`); the tests read what the visit
recorded: console errors, failed and off-site requests, images, anchors and links. The
browser context aborts any request to another host: the site must work offline.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

SITE = Path(os.environ.get("FASHION_OPTIM_SITE", "docs/_build/html")).resolve()
if not (SITE / "index.html").is_file():
    raise pytest.UsageError(
        f"FASHION_OPTIM_SITE={SITE} holds no index.html: build the site first "
        "(`nox -s browser` builds the quick site, then tests it)."
    )

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL = (
    "The browser tests need Playwright for Python and a Chromium:\n"
    "  pip install playwright          (nox -s browser installs it; no `playwright install`)\n"
    "  sudo apt-get install chromium   (Debian/Ubuntu), or set FASHION_OPTIM_CHROMIUM to the\n"
    "                                  path of a Chrome or Chromium executable."
)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # the test report says what failed
        pass


@pytest.fixture(scope="session")
def base_url():
    """The site, served from a thread on a free port of 127.0.0.1."""
    handler = functools.partial(_Quiet, directory=str(SITE))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _chromium() -> str:
    named = os.environ.get("FASHION_OPTIM_CHROMIUM")
    candidates = [named] if named else ["/usr/bin/chromium", "chromium", "chromium-browser"]
    for candidate in candidates:
        found = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
        if found:
            return found
    pytest.fail(f"No Chromium found (looked for {', '.join(candidates)}).\n{INSTALL}")


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"Playwright for Python is not installed.\n{INSTALL}")
    executable = _chromium()
    with sync_playwright() as pw:
        try:
            chromium = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except Exception as exc:
            pytest.fail(f"Chromium ({executable}) did not start: {exc}\n{INSTALL}")
        yield chromium
        chromium.close()


@dataclass
class Offsite:
    """Requests to other hosts, aborted: the site must make none."""

    urls: list[str] = field(default_factory=list)


def _make_context(browser, base_url: str, offsite: Offsite, **kwargs):
    context = browser.new_context(**kwargs)
    context.set_default_timeout(30_000)
    host = urlsplit(base_url).netloc

    def route(route):
        url = route.request.url
        if urlsplit(url).scheme in ("http", "https", "ws", "wss") and urlsplit(url).netloc != host:
            offsite.urls.append(url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", route)
    return context


@pytest.fixture(scope="session")
def offsite() -> Offsite:
    return Offsite()


@pytest.fixture(scope="session")
def context(browser, base_url, offsite):
    ctx = _make_context(browser, base_url, offsite)
    yield ctx
    ctx.close()


@pytest.fixture(scope="session")
def dark_context(browser, base_url, offsite):
    """A browser whose reader chose the dark theme (pydata-sphinx-theme's storage keys)."""
    ctx = _make_context(browser, base_url, offsite, color_scheme="dark")
    ctx.add_init_script(
        "localStorage.setItem('mode', 'dark'); localStorage.setItem('theme', 'dark');"
    )
    yield ctx
    ctx.close()


@dataclass
class Visit:
    """What loading one page recorded."""

    url: str
    console_errors: list[str]
    failed_requests: list[str]
    offsite: list[str]
    images: list[dict]
    ids: set[str]
    links: list[str]
    #: The icons the page declares (``<link rel="icon">``).
    icons: list[str]
    #: Printed outputs of the examples wider than their box: (box, content) widths in
    #: px and the widest line.
    wide_outputs: list[tuple[int, int, str]]
    #: Display equations (MathJax ``mjx-container[display]``) wider than their column:
    #: (room, content) widths in px and the TeX.
    wide_equations: list[tuple[int, int, str]]
    #: Headings (h1-h3) wider than their column: (room, content) widths in px and text.
    wide_headings: list[tuple[int, int, str]]
    #: Code blocks (a chapter's code, a page's shown source) that scroll sideways: (box,
    #: content) widths in px and the widest line.
    wide_code: list[tuple[int, int, str]]


# Wait for what still changes the page after "load": MathJax's typesetting and fonts.
_SETTLE_JS = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  await document.fonts.ready;
}"""
# Load every image now, lazy ones included, and report what each one shows.
_IMAGES_JS = """async () => {
  const imgs = [...document.images];
  for (const img of imgs) { img.loading = "eager"; }
  await Promise.all(imgs.map(img => img.decode().catch(() => null)));
  return imgs.map(img => ({src: img.currentSrc || img.src, complete: img.complete,
                           width: img.naturalWidth, alt: img.alt}));
}"""
_IDS_JS = """() => [...document.querySelectorAll('[id], a[name]')].map(e => e.id || e.name)"""
_LINKS_JS = """() => [...document.querySelectorAll('a[href]')].map(a => a.href)"""
_ICONS_JS = """() => [...document.querySelectorAll('link[rel~="icon"]')].map(l => l.href)"""
# Boxes that scroll sideways: (box, content) widths in px and the widest line.
_SCROLLING_JS = """(selector) => [...document.querySelectorAll(selector)]
  .filter(e => e.getClientRects().length && e.scrollWidth > e.clientWidth + 1)
  .map(e => [e.clientWidth, e.scrollWidth,
             e.innerText.split('\\n').reduce((a, b) => (b.length > a.length ? b : a), '')])"""
# printed output, and code (every highlighted block that is not printed output)
_OUTPUT = ".sphx-glr-script-out pre"
_CODE = "div.highlight pre:not(.sphx-glr-script-out pre)"

# Elements wider than the column they sit in: content wider than the element's own box
# (cut off, or scrolled inside it, so part is hidden) or than the column from the
# element's left edge on, or a box that starts left of the column. The column is the
# page's <article> (the theme's content column), else <main>, else the body.
_WIDER_THAN_COLUMN_JS = """([selector, describe]) => {
  const describeOf = {
    tex: e => {
      try { return MathJax.startup.document.getMathItemsWithin(e)[0].math.trim(); }
      catch (err) { return e.textContent; }
    },
    text: e => [...e.childNodes]
      .filter(n => !(n.classList && n.classList.contains('headerlink')))
      .map(n => n.textContent).join('').trim(),
  };
  const wide = [];
  for (const e of document.querySelectorAll(selector)) {
    if (!e.getClientRects().length) continue;  // not displayed
    const column = e.closest('article') || e.closest('main') || document.body;
    const box = e.getBoundingClientRect(), col = column.getBoundingClientRect();
    // the room the element has: its own box, cut at the column's right edge
    const room = Math.min(e.clientWidth, col.right - box.left);
    if (e.scrollWidth > room + 1 || box.left < col.left - 1) {
      wide.push([Math.round(room), e.scrollWidth, describeOf[describe](e)]);
    }
  }
  return wide;
}"""


def _settle(page) -> None:
    page.evaluate(_SETTLE_JS)


@pytest.fixture(scope="session")
def settle():
    """``settle(page)``: wait for MathJax and the fonts after the page's load event."""
    return _settle


def load(context, url: str, offsite: Offsite) -> Visit:
    """Open ``url`` in a new tab, let it settle, and record what happened."""
    page = context.new_page()
    console, failed = [], []
    favicon = urlsplit(url)._replace(path="/favicon.ico", query="", fragment="").geturl()

    def on_console(message) -> None:
        where = message.location.get("url", "")
        # Chromium asks for /favicon.ico when a page declares no icon, sometimes after
        # the page is read: test_the_site_has_an_icon checks that once, not per page.
        if message.type == "error" and where != favicon:
            console.append(f"{message.text} (at {where or url})")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: console.append(f"uncaught exception: {exc}"))
    page.on("requestfailed", lambda r: failed.append(f"{r.url} ({r.failure or 'failed'})"))
    page.on(
        "response",
        lambda r: failed.append(f"{r.url} (HTTP {r.status})") if r.status >= 400 else None,
    )
    before = len(offsite.urls)
    try:
        if page.goto(url, wait_until="load") is None:
            failed.append(f"{url} (no response)")
        _settle(page)
        images = page.evaluate(_IMAGES_JS)
        ids = set(page.evaluate(_IDS_JS))
        links = page.evaluate(_LINKS_JS)
        icons = page.evaluate(_ICONS_JS)
        wide = [tuple(w) for w in page.evaluate(_SCROLLING_JS, _OUTPUT)]
        code = [tuple(w) for w in page.evaluate(_SCROLLING_JS, _CODE)]
        equations = page.evaluate(_WIDER_THAN_COLUMN_JS, ["mjx-container[display]", "tex"])
        headings = page.evaluate(_WIDER_THAN_COLUMN_JS, ["h1, h2, h3", "text"])
    finally:
        page.close()
    failed = [f for f in failed if not f.startswith(favicon)]
    return Visit(
        url,
        console,
        failed,
        offsite.urls[before:],
        images,
        ids,
        links,
        icons,
        wide,
        [tuple(w) for w in equations],
        [tuple(w) for w in headings],
        code,
    )


@pytest.fixture(scope="session")
def visit(context, base_url, offsite):
    """``visit("auto_gallery/index.html")``: the page's :class:`Visit`, loaded once."""
    cache: dict[str, Visit] = {}

    def get(rel: str) -> Visit:
        if rel not in cache:
            cache[rel] = load(context, base_url + rel, offsite)
        return cache[rel]

    return get


def weigh(browser, base_url: str, rel: str, scale: float = 1) -> dict[str, int]:
    """What a first visit to ``rel`` downloads: bytes per URL, the page's HTML and every
    file it loads from the site (scripts, styles, fonts, images, lazy ones included;
    images embedded as data, such as an animation's frames, are inside the HTML).

    A fresh browser context, so nothing comes from a cache; ``scale`` is the device pixel
    ratio, which decides whether the figures' 1x or 2x files are loaded.
    """
    offsite = Offsite()
    ctx = _make_context(browser, base_url, offsite, device_scale_factor=scale)
    page = ctx.new_page()
    responses = []
    page.on("response", lambda response: responses.append(response))
    try:
        page.goto(base_url + rel, wait_until="load")
        _settle(page)
        page.evaluate(_IMAGES_JS)
        page.wait_for_load_state("networkidle")
        host = urlsplit(base_url).netloc
        return {
            r.url: len(r.body())
            for r in responses
            if urlsplit(r.url).netloc == host and r.status == 200
        }
    finally:
        page.close()
        ctx.close()


@pytest.fixture(scope="session")
def page_weight(browser, base_url):
    """``page_weight(rel, scale=1)``: :func:`weigh` for a page of the site."""
    return functools.partial(weigh, browser, base_url)
