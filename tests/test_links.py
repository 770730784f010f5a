"""Every internal link of the built book resolves: each relative href/src names a file of the build,
and each #anchor exists in the page it points to."""

from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bs4 import BeautifulSoup

LINK_ATTRIBUTES = {"a": "href", "link": "href", "img": "src", "script": "src", "source": "src",
                   "iframe": "src"}


@cache
def anchors_of(page: Path) -> frozenset[str]:
    soup = BeautifulSoup(page.read_text(), "html.parser")
    ids = {tag["id"] for tag in soup.find_all(id=True)}
    names = {tag["name"] for tag in soup.find_all("a", attrs={"name": True})}
    return frozenset(ids | names)


def internal_links(page: Path):
    """(attribute value, target path or None for the page itself, fragment) of each relative link."""
    soup = BeautifulSoup(page.read_text(), "html.parser")
    for tag, attribute in LINK_ATTRIBUTES.items():
        for element in soup.find_all(tag, attrs={attribute: True}):
            value = element[attribute].strip()
            parts = urlsplit(value)
            if parts.scheme or parts.netloc or not value:
                continue  # external (http:, mailto:, data:, javascript:, //host) or empty
            target = None
            if parts.path:
                target = (page.parent / unquote(parts.path)).resolve()
                if value.endswith("/") or target.is_dir():
                    target = target / "index.html"
            yield value, target, unquote(parts.fragment)


def test_every_relative_link_and_anchor_resolves(html):
    # _static/ holds the themes' Jinja templates (*.html that are not pages): skip them.
    pages = sorted(p for p in html.rglob("*.html") if "_static" not in p.relative_to(html).parts)
    assert pages, "no HTML pages in the build"
    broken, checked = [], 0
    for page in pages:
        for value, target, fragment in internal_links(page):
            checked += 1
            where = f"{page.relative_to(html)}: {value}"
            if target is not None and not target.is_file():
                broken.append(f"{where} (no file {target})")
                continue
            if fragment and (target or page).suffix == ".html" and fragment not in anchors_of(target or page):
                broken.append(f"{where} (no anchor #{fragment})")
    assert checked > 100, f"only {checked} internal links found: is the parser looking at the book?"
    assert not broken, "broken internal links:\n" + "\n".join(broken)
