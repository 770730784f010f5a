"""The HTML book builds from the stored outputs with warnings as errors, and shows what it should."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT), "--path-output", str(out),
         "-W", "-n", "--keep-going"],
        cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return out / "_build" / "html"


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
