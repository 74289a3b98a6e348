"""The built site in headless Chromium: every page, image, download, link; dark mode; search.

Run by ``nox -s browser`` (``-- --no-build`` to test the site already built). The page
lists are read from the built site when the tests are collected, so a new chapter is
tested as soon as it is built.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import re
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import matplotlib.image as mpimg
import pytest

SITE = Path(os.environ.get("FASHION_OPTIM_SITE", "docs/_build/html")).resolve()


def _text(rel: str) -> str:
    return (SITE / rel).read_text(encoding="utf-8", errors="replace")


class _Hrefs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "a":
            self.hrefs.extend(value for name, value in attrs if name == "href" and value)


def _crawl(start: str = "index.html") -> list[str]:
    """The pages reachable from ``start`` (and Sphinx's search and index pages) through
    the site's own links.

    Following links rather than listing files skips pages an earlier build left behind
    in the output folder (Sphinx never deletes them), which no reader can reach.
    """
    roots = [
        p
        for p in (start, "search.html", "genindex.html", "py-modindex.html")
        if (SITE / p).is_file()
    ]
    seen, todo = set(roots), list(roots)
    while todo:
        page = todo.pop()
        parser = _Hrefs()
        parser.feed(_text(page))
        for href in parser.hrefs:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or not parts.path:
                continue
            path = unquote(parts.path)
            target = posixpath.normpath(posixpath.join(posixpath.dirname(page), path))
            if path.endswith("/"):
                target += "/index.html"
            if target.endswith(".html") and target not in seen and (SITE / target).is_file():
                seen.add(target)
                todo.append(target)
    return sorted(seen)


#: Every page a reader can reach from the index, relative to the site's root.
PAGES = _crawl()
#: The gallery's examples: the pages that offer .py and .ipynb downloads.
EXAMPLES = [p for p in PAGES if re.fullmatch(r"auto_gallery/(.+/)?plot_[^/]+\.html", p)]
#: Pages that show figures: the examples and the note's pages.
_FIGURE = re.compile(
    r"<img[^>]*class\s*=\s*\"[^\"]*sphx-glr-(single|multi)-img|<figure|cell_output"
)
FIGURE_PAGES = [
    p
    for p in PAGES
    if not p.startswith(("_modules/", "api/")) and "<img" in _text(p) and _FIGURE.search(_text(p))
]
#: The figures, as the site's CSS selects them for their light frame in dark mode.
FIGURE_SELECTOR = "img.sphx-glr-single-img, img.sphx-glr-multi-img, figure img, .cell_output img"
PNG = b"\x89PNG\r\n\x1a\n"


def test_the_site_has_pages_examples_and_figures():
    # The lists below drive the parametrized tests: empty lists would test nothing.
    assert "index.html" in PAGES and "search.html" in PAGES
    assert EXAMPLES, f"no gallery example under {SITE}/auto_gallery"
    assert set(EXAMPLES) <= set(FIGURE_PAGES)


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_without_errors(visit, page):
    v = visit(page)
    assert not v.failed_requests, f"{page}: failed requests:\n" + "\n".join(v.failed_requests)
    assert not v.console_errors, f"{page}: console errors:\n" + "\n".join(v.console_errors)


def test_the_site_has_an_icon(visit, status_of, base_url):
    # Without <link rel="icon">, every browser asks the host for /favicon.ico: a 404 and
    # a console error on every page. html_favicon in docs/conf.py declares one.
    icons = visit("index.html").icons or [base_url + "favicon.ico"]
    missing = [icon for icon in icons if status_of(icon) != 200]
    assert not missing, (
        f"the site's icon is missing ({', '.join(missing)}): browsers log a 404 on every "
        "page; set html_favicon in docs/conf.py"
    )


@pytest.mark.parametrize("page", PAGES)
def test_page_requests_nothing_from_other_hosts(visit, page):
    offsite = visit(page).offsite
    assert not offsite, (
        f"{page} asked other hosts for (fonts, scripts and styles must be served with the "
        "site; the browser here blocks them):\n" + "\n".join(offsite)
    )


@pytest.mark.parametrize("page", PAGES)
def test_every_image_has_loaded(visit, page):
    broken = [i for i in visit(page).images if not (i["complete"] and i["width"] > 0)]
    assert not broken, f"{page}: images that did not load: {broken}"


@pytest.mark.parametrize("page", EXAMPLES)
def test_example_offers_py_and_ipynb_downloads(visit, context, page):
    stem = page.rsplit("/", 1)[-1].removesuffix(".html")
    links = {u for u in visit(page).links if "/_downloads/" in urlsplit(u).path}
    for ext in (".py", ".ipynb"):
        urls = [u for u in links if urlsplit(u).path.endswith(f"/{stem}{ext}")]
        assert urls, f"{page} offers no {stem}{ext} download (links: {sorted(links)})"
        for url in urls:
            response = context.request.get(url)
            body = response.body()
            assert response.status == 200 and body, f"{url}: HTTP {response.status}, {len(body)} B"
            if ext == ".py":
                compile(body, url, "exec")
            else:
                notebook = json.loads(body)
                assert notebook["nbformat"] == 4 and len(notebook["cells"]) > 1


def _wheel_links(links) -> set[str]:
    return {u for u in links if urlsplit(u).path.endswith(".whl")}


def _zip_names(body: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.mark.parametrize("page", EXAMPLES)
def test_example_offers_the_library_wheel(visit, context, page):
    # A reader who downloads the chapter gets the library that it imports from the same
    # page (docs/_ext/site_wheel.py): in the download box and in the sidebar's links.
    links = visit(page).links
    wheels = _wheel_links(links)
    assert len(wheels) == 1, f"{page} offers no single library wheel: {sorted(wheels)}"
    url = wheels.pop()
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    response = context.request.get(url)
    wheel = response.body()
    assert response.status == 200 and wheel, f"{url}: HTTP {response.status}, {len(wheel)} B"
    held = _zip_names(wheel)
    assert "fashion_optim/__init__.py" in held, f"{url} holds no fashion_optim package"
    assert any(n.endswith(".dist-info/METADATA") for n in held), f"{url} is not a wheel"
    # the notebook's first cell names this wheel, and the example's zip holds it
    stem = page.rsplit("/", 1)[-1].removesuffix(".html")
    for url in {u for u in links if "/_downloads/" in urlsplit(u).path}:
        path = urlsplit(url).path
        if path.endswith(f"/{stem}.ipynb"):
            first = "".join(json.loads(context.request.get(url).body())["cells"][0]["source"])
            assert name in first, f"the notebook's first cell does not name {name}:\n{first}"
        elif path.endswith(f"/{stem}.zip"):
            assert _zip_names(context.request.get(url).body()).get(name) == wheel, (
                f"{url} does not hold {name}"
            )


def test_download_all_archives_hold_the_wheel(visit, context):
    links = visit("auto_gallery/index.html").links
    wheels = _wheel_links(links)
    assert len(wheels) == 1, f"the gallery offers no single library wheel: {sorted(wheels)}"
    url = wheels.pop()
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    wheel = context.request.get(url).body()
    archives = {u for u in links if urlsplit(u).path.endswith(".zip")}
    assert archives, "the gallery offers no 'download all examples' archive"
    for archive in archives:
        response = context.request.get(archive)
        assert response.status == 200, f"{archive}: HTTP {response.status}"
        held = _zip_names(response.body())
        assert held.get(name) == wheel, f"{archive} does not hold {name}: {sorted(held)}"


@pytest.mark.parametrize("page", EXAMPLES)
def test_printed_output_fits_its_box(visit, page):
    # Playwright's default window, 1280 px: a table that scrolls sideways hides columns.
    wide = visit(page).wide_outputs
    assert not wide, f"{page}: printed output wider than its box (box px, content px, line):\n" + (
        "\n".join(f"{box} < {content}: {line!r}" for box, content, line in wide)
        + "\nKeep each printed line within 80 characters."
    )


_CODE_PAGES = [
    p
    for p in PAGES
    if not p.startswith("api/")  # docstring examples: the library's own line length
]


@pytest.mark.parametrize("page", _CODE_PAGES)
def test_code_fits_its_box(visit, page):
    # At 1280 px a code line longer than its box scrolls sideways and hides its end.
    wide = visit(page).wide_code
    assert not wide, f"{page}: code wider than its box (box px, content px, line):\n" + (
        "\n".join(f"{box} < {content}: {line!r}" for box, content, line in wide)
        + "\nShorten the line (gallery/ruff.toml formats chapters to fit the box)."
    )


@pytest.mark.parametrize("page", PAGES)
def test_display_equations_fit_their_column(visit, page):
    # At 1280 px an equation that scrolls inside its box, or runs past the column, hides
    # its end (MathJax 3 does not break lines).
    wide = visit(page).wide_equations
    assert not wide, f"{page}: display equations wider than their column (room px, math px):\n" + (
        "\n".join(f"{room} < {content}: {tex}" for room, content, tex in wide)
        + "\nSplit the equation over lines (\\\\ in a .. math:: block, aligned in MyST)."
    )


@pytest.mark.parametrize("page", PAGES)
def test_headings_fit_their_column(visit, page):
    wide = visit(page).wide_headings
    assert not wide, f"{page}: headings wider than their column (room px, heading px):\n" + (
        "\n".join(f"{room} < {content}: {text!r}" for room, content, text in wide)
    )


@pytest.fixture(scope="session")
def status_of(context):
    """HTTP status of a URL on the site, asked once per session."""
    seen: dict[str, int] = {}

    def status(url: str) -> int:
        if url not in seen:
            seen[url] = context.request.head(url).status
        return seen[url]

    return status


def _page_of(url: str) -> str | None:
    """The site-relative HTML page a URL (without fragment) points at, if it is one."""
    path = unquote(urlsplit(url).path).lstrip("/")
    if path == "" or path.endswith("/"):
        path += "index.html"
    return path if path.endswith(".html") else None


@pytest.mark.parametrize("page", PAGES)
def test_internal_links_resolve(visit, status_of, base_url, page):
    host = urlsplit(base_url).netloc
    broken = []
    for link in sorted(set(visit(page).links)):
        parts = urlsplit(link)
        if parts.scheme not in ("http", "https") or parts.netloc != host:
            continue  # links to other sites are fine; requests to them are not
        target, fragment = urldefrag(link)
        status = status_of(target)
        if status != 200:
            broken.append(f"{link}: HTTP {status}")
            continue
        target_page = _page_of(target)
        if fragment and target_page and unquote(fragment) not in visit(target_page).ids:
            broken.append(f"{link}: {target_page} has no element with id {unquote(fragment)!r}")
    assert not broken, f"{page}: broken links:\n" + "\n".join(broken)


_DARK_JS = """(selector) => {
  const behind = (el) => {  // the first opaque background below an element
    for (let e = el.parentElement; e; e = e.parentElement) {
      const c = getComputedStyle(e).backgroundColor;
      if (c && c !== "transparent" && !c.endsWith(", 0)")) return c;
    }
    return getComputedStyle(document.documentElement).backgroundColor;
  };
  return [...document.querySelectorAll(selector)].map(img => ({
    urls: [img.currentSrc || img.src,
           ...img.srcset.split(",").map(s => s.trim().split(/\\s+/)[0]).filter(Boolean)
             .map(s => new URL(s, document.baseURI).href)],
    frame: getComputedStyle(img).backgroundColor,
    behind: behind(img),
    shown: img.complete && img.naturalWidth > 0,
  }));
}"""


def _luminance(css_colour: str) -> float:
    r, g, b = (int(v) for v in re.findall(r"\d+", css_colour)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


@pytest.mark.parametrize("page", FIGURE_PAGES)
def test_figures_are_readable_in_dark_mode(dark_context, context, base_url, settle, page):
    tab = dark_context.new_page()
    try:
        tab.goto(base_url + page, wait_until="load")
        settle(tab)
        theme = tab.evaluate("document.documentElement.dataset.theme")
        figures = tab.evaluate(_DARK_JS, FIGURE_SELECTOR)
    finally:
        tab.close()
    assert theme == "dark", f"{page}: the theme did not switch to dark ({theme!r})"
    assert figures, f"{page}: no figure matches {FIGURE_SELECTOR!r}"
    for fig in figures:
        assert fig["shown"], f"{page}: {fig['urls'][0]} is not shown"
        # the page around the figure is dark, the frame the site's CSS draws is white
        assert _luminance(fig["behind"]) < 0.3, f"{page}: the page is not dark: {fig}"
        assert fig["frame"] == "rgb(255, 255, 255)", f"{page}: no light frame: {fig}"
        for url in dict.fromkeys(fig["urls"]):
            body = context.request.get(url).body()
            assert body.startswith(PNG), f"{url} is not a PNG"
            pixels = mpimg.imread(io.BytesIO(body), format="png")
            if pixels.ndim == 3 and pixels.shape[2] == 4:
                alpha = pixels[..., 3]
                assert alpha.min() == 1.0, (
                    f"{url}: transparent pixels ({(alpha < 1).mean():.1%}); draw figures on "
                    "an opaque background so they stay readable in dark mode"
                )


def search(context, base_url: str, query: str) -> list[str]:
    """The result links Sphinx's search page lists for ``query``."""
    tab = context.new_page()
    try:
        tab.goto(f"{base_url}search.html?q={query}", wait_until="load")
        tab.wait_for_function(
            "() => { const s = document.querySelector('#search-results p.search-summary');"
            " return s && s.innerText.length > 0; }"
        )
        return tab.eval_on_selector_all(
            "#search-results ul.search li a", "links => links.map(a => a.href)"
        )
    finally:
        tab.close()


def test_search_finds_the_ewma_chapter_by_a_title_word(context, base_url):
    results = search(context, base_url, "bias")
    assert any("ewma" in urlsplit(r).path for r in results), results


def _title(rel: str) -> str:
    match = re.search(r"<title>(.*?)(?:&#8212;|—|</title>)", _text(rel), re.DOTALL)
    return match.group(1).strip() if match else ""


@pytest.mark.parametrize("page", EXAMPLES)
def test_search_finds_each_example_by_the_longest_word_of_its_title(context, base_url, page):
    words = re.findall(r"[A-Za-z]{4,}", _title(page))
    assert words, f"{page} has no title"
    word = max(words, key=len)
    results = [urlsplit(r).path.lstrip("/") for r in search(context, base_url, word.lower())]
    assert page in results, f"searching {word!r}: {results}"


#: The most a page may weigh, in bytes, on a first visit: its HTML and every file it
#: loads (an animation's frames are inside the HTML, as data), uncompressed.
MAX_PAGE_BYTES = 5_000_000


@pytest.mark.parametrize("scale", [1, 2])
@pytest.mark.parametrize("page", FIGURE_PAGES)
def test_page_weighs_at_most_5_mb(page_weight, page, scale):
    # On a screen of device pixel ratio 1 and on a hi-dpi one (2): the site has no 2x
    # files (docs/conf.py, image_srcset), so both load the same 200-dpi figures.
    loaded = page_weight(page, scale)
    total = sum(loaded.values())
    largest = sorted(loaded.items(), key=lambda item: -item[1])[:8]
    assert total <= MAX_PAGE_BYTES, (
        f"{page} weighs {total / 1e6:.2f} MB at a pixel ratio of {scale} (at most "
        f"{MAX_PAGE_BYTES / 1e6:g} MB): fewer "
        "or smaller animation frames (fashion_optim.plotting's FRAMES and DPI), or "
        "smaller figures. The largest files:\n"
        + "\n".join(f"{size / 1e6:8.3f} MB  {url}" for url, size in largest)
    )


#: The examples with an animation: matplotlib's JavaScript player, its frames embedded.
ANIMATED = [p for p in EXAMPLES if 'class="anim-slider"' in _text(p)]

# The frame a player shows, once its script has set one.
_SHOWN_JS = "(img) => img.src.startsWith('data:image/') ? img.src : null"
# Where the player sits in the column, and whether its buttons show their icons.
_PLAYER_JS = """(player) => {
  const column = player.closest('article') || document.body;
  const icon = getComputedStyle(player.querySelector('button i'), '::before').content;
  return {right: player.querySelector('img').getBoundingClientRect().right,
          column: column.getBoundingClientRect().right, icon};
}"""


def _shown(img) -> str | None:
    """The frame a player's image shows (a data URL), or None before it shows one."""
    return img.evaluate(_SHOWN_JS)


@pytest.mark.parametrize("page", ANIMATED)
def test_each_animation_plays_steps_and_scrubs(context, base_url, settle, page):
    tab = context.new_page()
    try:
        tab.goto(base_url + page, wait_until="load")
        settle(tab)
        players = tab.locator(".sphx-glr-animation .animation")
        assert players.count() >= 1, f"{page}: no animation player"
        for i in range(players.count()):
            player = players.nth(i)
            player.scroll_into_view_if_needed()
            img, slider = player.locator("img"), player.locator("input.anim-slider")
            tab.wait_for_function(_SHOWN_JS, arg=img.element_handle())
            frames = int(slider.get_attribute("max")) + 1
            where = f"{page}, animation {i + 1}"
            assert frames >= 2, f"{where}: {frames} frame(s)"
            layout = player.evaluate(_PLAYER_JS)
            assert layout["right"] <= layout["column"] + 1, f"{where} is wider than the column"
            assert layout["icon"] not in ("none", "normal", ""), f"{where}: buttons lack icons"
            first = _shown(img)
            player.get_by_role("button", name="Next frame", exact=True).click()
            assert _shown(img) != first, f"{where}: 'Next frame' did not change the frame"
            player.get_by_role("button", name="First frame", exact=True).click()
            assert _shown(img) == first, f"{where}: 'First frame' did not go back"
            player.get_by_role("button", name="Play", exact=True).click()
            tab.wait_for_function(
                "([img, first]) => img.src !== first", arg=[img.element_handle(), first]
            )
            player.get_by_role("button", name="Pause", exact=True).click()
            scrubbed = []
            for position in (0, frames // 2, frames - 1):
                slider.fill(str(position))
                scrubbed.append(_shown(img))
            assert len(set(scrubbed)) == 3, (
                f"{where}: the slider at 0, {frames // 2} and {frames - 1} of {frames} "
                "frames shows fewer than three different frames"
            )
    finally:
        tab.close()
