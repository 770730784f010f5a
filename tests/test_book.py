"""The HTML book builds from the stored outputs with warnings as errors, and shows what it should."""

import re
from pathlib import Path

import yaml
from bs4 import BeautifulSoup
from PIL import Image

from booksite import ROOT, expected_glue_texts, toc_pages
from lessonlib.alt_text import LOOKS_LIKE_A_FILE, check_alt

# The `html` fixture (the instructor edition, built once per session) is in conftest.py.


def test_every_chapter_page_is_built(html):
    for notebook in sorted((ROOT / "chapters").glob("*.ipynb")):
        assert (html / "chapters" / f"{notebook.stem}.html").is_file(), notebook.name


def test_no_glue_reference_is_left_unresolved(html):
    for page in html.rglob("*.html"):
        text = page.read_text()
        assert "{glue:" not in text, f"{page.name} shows a raw glue role"


def test_zero_init_chapter_quotes_the_articles_accuracy(html):
    """Article 000's own code gives 7.78% for zero init (torch 2.13 CPU); the chapter glues it."""
    text = (html / "chapters" / "02_zero_initialization.html").read_text()
    assert "7.78" in text


def test_solutions_are_hidden_by_default(html):
    pages = [p.read_text() for p in (html / "chapters").glob("*.html")]
    solutions = [m for text in pages for m in re.findall(r'<div class="([^"]*solution[^"]*)"', text)]
    assert solutions, "no solutions found"
    assert all("dropdown" in classes for classes in solutions), solutions


def test_every_page_of_the_toc_is_built(html):
    for docname in toc_pages():
        assert (html / f"{docname}.html").is_file(), docname


def test_every_glued_number_is_shown(html):
    for docname in toc_pages():
        text = re.sub(r"\s+", " ", (html / f"{docname}.html").read_text())
        missing = [t for t in expected_glue_texts(docname) if t not in text]
        assert not missing, f"{docname} does not show the glued values {missing}"


def test_math_is_served_locally(html):
    """MathJax comes from the book's own _static folder (sphinx-mathjax-offline), not a CDN."""
    page = (html / "chapters" / "05_xavier_glorot.html").read_text()
    scripts = re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', page, flags=re.IGNORECASE)
    assert scripts and all(not s.startswith(("http:", "https:", "//")) for s in scripts), scripts
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()


def test_figures_have_an_opaque_white_background(html):
    """Figures keep black text on white, readable in the light and in the dark theme."""
    images = sorted((html / "_images").glob("*.png"))
    assert images, "no figures in the build"
    for path in images:
        image = Image.open(path).convert("RGBA")
        alpha = image.getchannel("A")
        assert alpha.getextrema()[0] == 255, f"{path.name} has transparent pixels"
        width, height = image.size
        corners = [image.getpixel(xy)[:3] for xy in
                   [(0, 0), (width - 1, 0), (0, height - 1), (width - 1, height - 1)]]
        assert all(min(c) >= 240 for c in corners), f"{path.name}: corners {corners} are not white"


def test_every_image_has_an_alt_text_in_words(html):
    """A screen reader announces an image by its alt text: no image of any page is announced by
    its file name or path, and every lesson figure says what it shows (lessonlib.alt_text)."""
    figures = 0
    for docname in toc_pages():
        soup = BeautifulSoup((html / f"{docname}.html").read_text(), "html.parser")
        for img in soup.find_all("img"):
            alt = img.get("alt", "")
            where = f"{docname}: <img src={img.get('src')!r} alt={alt!r}>"
            assert alt.strip(), f"{where} has no alt text"
            assert not LOOKS_LIKE_A_FILE.search(alt), f"{where}: the alt text is a file name"
            if "_images/" in img.get("src", ""):
                figures += 1
                assert check_alt(alt) == alt, where
    assert figures >= 60, f"only {figures} lesson figures found"


def test_colab_install_line_names_the_repository_of_the_config():
    """The Colab users' first line installs lessonlib from the repository the launch buttons use."""
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    for doc in ("intro.md", "README.md"):
        lines = re.findall(r'%pip install .*"git\+([^"]+)"', (ROOT / doc).read_text())
        assert lines == [url], f"{doc}: Colab install line(s) {lines}, repository {url}"
