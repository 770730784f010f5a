"""The built book, opened page by page in headless Chromium, as a reader sees it.

Needs Debian's `chromium` (`apt-get install -y chromium`) and the pinned `playwright` Python
package, which drives that browser (no browser download: `playwright install` is never run).
The book is served from the session's build on a free localhost port. Every request to another
host is recorded and aborted: the book must work offline, and the test checks that the set of
external hosts it asks for is exactly EXTERNAL_HOSTS_ALLOWED.

Screenshots go to tests/artifacts/ (git-ignored); their paths are printed.
"""

import functools
import http.server
import re
import shutil
import threading
from urllib.parse import urlsplit

import pytest
from bs4 import BeautifulSoup

from booksite import expected_glue_texts, markdown_of, toc_pages

# Hosts the book may ask for. Empty: MathJax, fonts, icons and scripts are all served by the book
# itself (MathJax by sphinx-mathjax-offline). Links to other sites (Binder, Colab, GitHub, papers)
# are only followed when clicked, so they are not requests.
EXTERNAL_HOSTS_ALLOWED: frozenset[str] = frozenset()

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
PAGES = toc_pages()
SCREENSHOT_PAGES = {PAGES[0], "chapters/02_zero_initialization"}


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def site(html):
    """The instructor edition served on http://127.0.0.1:<free port>/."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(html)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser():
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("The browser test needs Debian's Chromium, which is not installed: run "
                    "`apt-get update && apt-get install -y chromium` (as root, or with sudo). "
                    "Do not run `playwright install`: the test drives the system Chromium.")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("The browser test needs the `playwright` Python package: "
                    "pip install -r requirements.txt")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Visit:
    """One browser tab that records console errors and aborts (and records) external requests."""

    def __init__(self, browser, site, dark=False):
        self.site = site
        self.external_hosts: set[str] = set()
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        if dark:
            self.context.add_init_script(
                "localStorage.setItem('mode', 'dark'); localStorage.setItem('theme', 'dark');")
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def _route(self, route):
        host = urlsplit(route.request.url).hostname
        if host in LOCAL_HOSTS:
            route.continue_()
        else:
            self.external_hosts.add(host)
            route.abort()

    def _console(self, message):
        if message.type != "error":
            return
        url = message.location.get("url", "") if message.location else ""
        # A request this test aborted on purpose is logged as an error from the external URL;
        # those hosts are checked against the allow-list instead.
        if url and urlsplit(url).hostname not in LOCAL_HOSTS:
            return
        self.errors.append(f"{message.text} ({url})")

    def open(self, docname):
        self.page.goto(f"{self.site}/{docname}.html", wait_until="load")
        return self.page

    def close(self):
        self.context.close()


@pytest.fixture
def visit(browser, site):
    visits = []

    def make(dark=False):
        visits.append(Visit(browser, site, dark=dark))
        return visits[-1]

    yield make
    for v in visits:
        v.close()


# What the reader sees of the math and the tables of a page, gathered in the browser:
# - "errors": formulas MathJax could not typeset (TeX errors);
# - "backslash": formulas whose rendering shows a backslash (a macro inside \\text{...}, such as
#   \\text{fan\\_in}, or an undefined macro, is shown as its own TeX);
# - "raw": TeX left unrendered in the prose (outside code, outputs and typeset math);
# - "tables": tables wider than their box (cut off, or scrolled sideways) or than the article.
PAGE_PROBLEMS_JS = r"""() => {
  const found = {errors: [], backslash: [], raw: [], tables: []};
  for (const item of MathJax.startup.document.math) {
    const node = item.typesetRoot;
    if (!node) continue;
    if (node.querySelector('mjx-merror')) found.errors.push(item.math);
    else if (node.querySelector('mjx-c.mjx-c5C')) found.backslash.push(item.math);
  }
  const skip = 'code, pre, script, style, mjx-container, .highlight, kbd, samp, textarea, .output';
  const tex = /\\(?:[a-zA-Z]{2,}|[,;!_{}])|\$[^$\s]/;
  const article = document.querySelector('article');
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.parentElement.closest(skip)) continue;
    const m = n.textContent.match(tex);
    if (m) found.raw.push(n.textContent.slice(Math.max(0, m.index - 30), m.index + 30));
  }
  const right = article.getBoundingClientRect().right;
  for (const table of article.querySelectorAll('table')) {
    const box = table.parentElement;
    const width = table.getBoundingClientRect().width;
    if (box.scrollWidth > box.clientWidth + 1 || table.getBoundingClientRect().right > right + 1) {
      const head = table.rows.length ? table.rows[0].textContent.replace(/\s+/g, ' ').trim() : '';
      found.tables.push(`"${head.slice(0, 60)}": ${Math.round(width)} px in a ${box.clientWidth} px box`);
    }
  }
  return found;
}"""


def page_problems(page) -> dict:
    """PAGE_PROBLEMS_JS on ``page``, once MathJax (if the page loads it) has typeset everything."""
    page.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
    if not page.evaluate("() => !!(window.MathJax && MathJax.startup && MathJax.startup.document)"):
        page.evaluate("() => { window.MathJax = {startup: {document: {math: []}}}; }")
    return page.evaluate(PAGE_PROBLEMS_JS)


# axe-core (bundled by the pinned axe-playwright-python) on every page: no violation of impact
# "serious" or "critical", and no "moderate" one except these, which the theme causes:
AXE_ACCEPTED_MODERATE = {
    # pydata-sphinx-theme puts the first item of its primary sidebar (the search button's slot)
    # outside any landmark. The book's own content is all inside <main>; the theme is pinned.
    "region": ".sidebar-primary-item",
}

# Code cells: each token kind of a code block has one colour, so a page keeps one span per
# (colour, background, weight, style) and the other spans of that kind become plain text (in the
# block's own colour, which axe also checks). axe then checks every colour pair of the code at the
# cost of a few spans instead of thousands.
ONE_SPAN_PER_CODE_COLOUR_JS = r"""() => {
  const spans = Array.from(document.querySelectorAll('.highlight pre span')).filter(s => !s.children.length);
  const keys = spans.map(span => { const style = getComputedStyle(span);
    return [style.color, style.backgroundColor, style.fontWeight, style.fontStyle].join('|'); });
  const seen = new Set();
  spans.forEach((span, i) => {
    if (seen.has(keys[i])) span.replaceWith(span.textContent); else seen.add(keys[i]);
  });
}"""


def accessibility_problems(page) -> list[str]:
    """axe-core's violations on ``page`` that are serious, critical, or moderate and not accepted
    (ONE_SPAN_PER_CODE_COLOUR_JS changes the code blocks' markup, so run it after other checks)."""
    from axe_playwright_python.sync_playwright import Axe

    page.evaluate(ONE_SPAN_PER_CODE_COLOUR_JS)
    problems = []
    for violation in Axe().run(page).response["violations"]:
        targets = [" ".join(map(str, node["target"])) for node in violation["nodes"]]
        if violation["impact"] == "minor":
            continue
        accepted = AXE_ACCEPTED_MODERATE.get(violation["id"])
        if violation["impact"] == "moderate" and accepted and all(accepted in t for t in targets):
            continue
        problems.append(f"{violation['id']} ({violation['impact']}): {violation['help']} at {targets[:5]}")
    return problems


PHONE = {"width": 390, "height": 844}

# At a phone's width, whatever of the article sticks out of the screen and is not inside a box of
# its own that scrolls sideways (wide tables, code and display math may scroll in their box).
OFF_SCREEN_AT_THIS_WIDTH_JS = r"""() => {
  const width = document.documentElement.clientWidth;
  const found = [];
  const root = document.documentElement;
  if (root.scrollWidth > width + 1) found.push(`the page scrolls sideways: ${root.scrollWidth} px wide`);
  const fits = r => r.left >= -1 && r.right <= width + 1;
  const selector = 'p, li, dt, dd, h1, h2, h3, h4, img, figure, table, pre, .cell_output, .admonition, mjx-container';
  for (const el of document.querySelector('article').querySelectorAll(selector)) {
    const rect = el.getBoundingClientRect();
    if (rect.width === 0 || fits(rect)) continue;
    let box = el.parentElement, scrolls = false;
    for (; box && box !== document.body; box = box.parentElement) {
      const overflow = getComputedStyle(box).overflowX;
      if ((overflow === 'auto' || overflow === 'scroll') && fits(box.getBoundingClientRect())) { scrolls = true; break; }
    }
    if (!scrolls) {
      const what = el.tagName.toLowerCase() + (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ')[0] : '');
      found.push(`${what} from ${Math.round(rect.left)} to ${Math.round(rect.right)} px: "${el.textContent.trim().slice(0, 50)}"`);
    }
  }
  return found;
}"""


def off_screen_on_a_phone(page) -> list[str]:
    """OFF_SCREEN_AT_THIS_WIDTH_JS with ``page`` resized to a phone's 390 px (and back)."""
    size = page.viewport_size
    page.set_viewport_size(PHONE)
    try:
        page.wait_for_function("() => document.documentElement.clientWidth <= 390")
        return page.evaluate(OFF_SCREEN_AT_THIS_WIDTH_JS)
    finally:
        page.set_viewport_size(size)


def normalized(text):
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("docname", PAGES)
def test_page_renders_offline_and_complete(docname, visit, artifacts):
    v = visit()
    page = v.open(docname)

    heading = page.locator("article h1").first.text_content().replace("#", "").strip()
    assert heading, f"{docname}: no <h1>"
    assert page.title().startswith(heading), f"{docname}: title {page.title()!r} for heading {heading!r}"

    broken = page.evaluate("""async () => {
        const images = Array.from(document.images);
        for (const img of images) { img.loading = "eager"; }
        await Promise.all(images.map(img => img.decode().catch(() => null)));
        return images.filter(img => img.naturalWidth === 0).map(img => img.src);
    }""")
    assert not broken, f"{docname}: images that did not load: {broken}"

    text = normalized(page.evaluate("document.body.textContent"))
    assert "{glue" not in text, f"{docname}: a glue role is shown raw"
    missing = [t for t in expected_glue_texts(docname) if t not in text]
    assert not missing, f"{docname}: glued values not shown: {missing}"

    if re.search(r"\$|\\\(|\{math\}", markdown_of(docname)):
        page.wait_for_selector("mjx-container", state="attached", timeout=20_000)
        assert page.locator("mjx-container").count() > 0, f"{docname}: MathJax rendered nothing"
        assert page.locator("mjx-merror").count() == 0, f"{docname}: MathJax reports a TeX error"

    problems = page_problems(page)
    assert not problems["errors"], f"{docname}: TeX errors in {problems['errors']}"
    assert not problems["backslash"], f"{docname}: formulas rendered with a backslash: {problems['backslash']}"
    assert not problems["raw"], f"{docname}: TeX left raw in the prose: {problems['raw']}"
    assert not problems["tables"], \
        f"{docname}: tables that do not fit the page at 1280 px (they scroll or are cut off): {problems['tables']}"

    if docname in SCREENSHOT_PAGES:
        path = artifacts / f"{docname.replace('/', '__')}.png"
        page.screenshot(path=str(path))
        print(f"screenshot: {path}")

    off_screen = off_screen_on_a_phone(page)
    assert not off_screen, f"{docname}: at {PHONE['width']} px, sticking out of the screen: {off_screen}"

    # axe's CSS loader resolves the theme's `@import "../basic.css"` against the page, not the
    # stylesheet, and asks for a file that does not exist: its requests are not the book's.
    errors_before_axe = len(v.errors)
    accessibility = accessibility_problems(page)
    del v.errors[errors_before_axe:]
    assert not accessibility, f"{docname}: axe-core finds {accessibility}"

    if "{solution}" in markdown_of(docname):
        check_solutions_are_hidden_until_clicked(page, docname)

    assert not v.errors, f"{docname}: console errors from the book's own assets: {v.errors}"
    assert v.external_hosts <= EXTERNAL_HOSTS_ALLOWED, \
        f"{docname}: requests to hosts outside the allow-list: {sorted(v.external_hosts)}"


def check_solutions_are_hidden_until_clicked(page, docname):
    """Every solution of the page is folded away and opens on a click (last: it changes the page)."""
    solutions = page.locator("div.solution")
    assert solutions.count() > 0, f"{docname}: no solution on the page"
    for i in range(solutions.count()):
        solution = solutions.nth(i)
        body = solution.locator("section").first
        assert not body.is_visible(), f"{docname}: solution {i + 1} is shown before a click"
        solution.locator("button.toggle-button").first.click()
        body.wait_for(state="visible", timeout=5_000)
        assert body.is_visible(), f"{docname}: solution {i + 1} stays hidden after a click"


def test_page_checks_catch_raw_tex_backslashes_and_wide_tables(visit):
    """The checks above, shown to fail on a page given each defect they look for."""
    page = visit().open("glossary")
    assert page_problems(page) == {"errors": [], "backslash": [], "raw": [], "tables": []}
    page.evaluate(r"""async () => {
        const article = document.querySelector('article');
        const p = (html, tag = 'p') => { const e = document.createElement(tag); e.innerHTML = html; article.append(e); return e; };
        const typeset = [p('\\(\\mathrm{Var}(W) = 1/\\text{fan\\_in}\\)'), p('\\(a^b^c\\)')];
        p('a formula left as $\\sqrt{2/n}$ in the text');
        p('<table><tr><td style="white-space: nowrap">' + 'wide '.repeat(400) + '</td></tr></table>', 'div');
        await MathJax.typesetPromise(typeset);
    }""")
    problems = page_problems(page)
    assert problems["backslash"] == [r"\mathrm{Var}(W) = 1/\text{fan\_in}"], problems
    assert problems["errors"] == [r"a^b^c"], problems
    assert len(problems["raw"]) == 1 and "sqrt{2/n}" in problems["raw"][0], problems
    assert len(problems["tables"]) == 1, problems


def test_phone_and_accessibility_checks_catch_what_they_look_for(visit):
    """A page that fits and passes axe fails both checks once given a wide figure, an image
    without alt text and low-contrast text; a wide table in its own scrolling box is allowed."""
    page = visit().open("glossary")
    assert off_screen_on_a_phone(page) == [] and accessibility_problems(page) == []
    page.evaluate("""() => {
        const article = document.querySelector('article');
        const scroller = document.createElement('div');
        scroller.style.overflowX = 'auto';
        scroller.innerHTML = '<table><tr><td style="white-space: nowrap">' + 'wide '.repeat(200) + '</td></tr></table>';
        article.append(scroller);
    }""")
    assert off_screen_on_a_phone(page) == []
    page.evaluate("""() => {
        const article = document.querySelector('article');
        const img = document.createElement('img');
        img.src = '../_static/wide.png'; img.style.width = '800px'; img.style.maxWidth = 'none'; img.style.height = '10px';
        article.append(img);
        const p = document.createElement('p');
        p.style.color = '#ddd'; p.textContent = 'Pale text on a white page.';
        article.append(p);
    }""")
    off_screen = off_screen_on_a_phone(page)
    assert any(problem.startswith("img") for problem in off_screen), off_screen
    problems = accessibility_problems(page)
    assert any(p.startswith("image-alt (critical)") for p in problems), problems
    assert any(p.startswith("color-contrast (serious)") for p in problems), problems


def test_zero_init_chapter_shows_the_articles_accuracy(visit):
    page = visit().open("chapters/02_zero_initialization")
    assert "7.78" in page.evaluate("document.body.textContent")


def test_next_and_previous_follow_the_toc(html, visit, site):
    """Every page's "next" and "previous" links point to its neighbours in the table of contents,
    and clicking them moves there."""
    for i, docname in enumerate(PAGES):
        links = {a.get("class")[0]: a.get("href") for a in
                 BeautifulSoup((html / f"{docname}.html").read_text(), "html.parser").select("a.right-next, a.left-prev")}
        here = (html / docname).parent
        target = lambda link: link in links and (here / links[link]).resolve().relative_to(html.resolve()).with_suffix("").as_posix()
        if i + 1 < len(PAGES):
            assert target("right-next") == PAGES[i + 1], f"{docname}: 'next' goes to {links.get('right-next')}"
        if i > 0:
            assert target("left-prev") == PAGES[i - 1], f"{docname}: 'previous' goes to {links.get('left-prev')}"
    page = visit().open(PAGES[0])
    page.locator("a.right-next").first.click()
    page.wait_for_url(f"{site}/{PAGES[1]}.html*")
    page.locator("a.left-prev").first.click()
    page.wait_for_url(f"{site}/{PAGES[0]}.html*")


def test_dark_theme_screenshot(visit, artifacts):
    """Figures have an opaque white background (tests/test_book.py), so they stay readable here."""
    v = visit(dark=True)
    page = v.open("chapters/02_zero_initialization")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    page.locator("article img").first.scroll_into_view_if_needed()
    path = artifacts / "dark__chapters__02_zero_initialization.png"
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    assert not v.errors, v.errors
