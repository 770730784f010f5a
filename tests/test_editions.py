"""The two editions of the book.

- Instructor edition (`jupyter-book build .`, `_config.yml`): every solution in a dropdown, hidden
  until clicked.
- Student edition (`jupyter-book build . --config _config_student.yml`): the same exercises, no
  solution text anywhere, and no way to reach the notebooks (which contain the solutions) from it.
"""

import re

import yaml
from bs4 import BeautifulSoup

from booksite import EXERCISE_LABEL, ROOT, SOLUTION_DIRECTIVE, markdown_of, toc_pages


def normalized(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def soup_of(html, docname):
    return BeautifulSoup((html / f"{docname}.html").read_text(), "html.parser")


def pages_with_exercises():
    return [d for d in toc_pages() if EXERCISE_LABEL.search(markdown_of(d))]


def solution_snippets(soup) -> list[list[str]]:
    """For each solution of a page, the texts of its paragraphs, code blocks and list items that
    appear nowhere else on the page (so their presence can only mean the solution is shown)."""
    solutions = soup.select("div.solution")
    rest = BeautifulSoup(str(soup), "html.parser")
    for div in rest.select("div.solution"):
        div.decompose()
    elsewhere = normalized(rest.get_text(" "))
    snippets = []
    for div in solutions:
        body = div.select_one("section") or div
        texts = {normalized(el.get_text(" ")) for el in body.find_all(["p", "pre", "li"])}
        snippets.append(sorted(t for t in texts if len(t) >= 25 and t not in elsewhere))
    return snippets


def test_the_book_uses_no_gated_solutions():
    """sphinx-exercise's hide_solutions fails with solution-start/solution-end: the book avoids them."""
    for docname in toc_pages():
        assert "{solution-start}" not in markdown_of(docname), docname


def test_student_config_differs_from_the_instructor_config_only_where_marked():
    """--config replaces _config.yml, so the student file repeats it; only lines marked `# student`
    (and comments) may differ."""
    def lines(path):
        return [line for line in path.read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#") and "# student" not in line]

    instructor, student = ROOT / "_config.yml", ROOT / "_config_student.yml"
    only_instructor = {"title:", "use_repository_button:", "use_issues_button:", "binderhub_url:",
                       "colab_url:"}
    expected = [line for line in lines(instructor) if line.split()[0] not in only_instructor]
    assert lines(student) == expected
    config = yaml.safe_load(student.read_text())
    assert config["sphinx"]["config"]["hide_solutions"] is True


def test_instructor_edition_has_every_solution_in_a_hidden_dropdown(html):
    pages = pages_with_exercises()
    assert pages, "no page with exercises"
    for docname in pages:
        soup = soup_of(html, docname)
        solutions = soup.select("div.solution")
        directives = SOLUTION_DIRECTIVE.findall(markdown_of(docname))
        assert len(solutions) == len(directives), f"{docname}: {len(solutions)} of {len(directives)} solutions"
        for div in solutions:
            assert "dropdown" in div["class"], f"{docname}: a solution is not in a dropdown"
        # The text test below needs solution text that appears nowhere else on the page.
        assert any(solution_snippets(soup)), f"{docname}: no solution has text of its own to test"


def test_student_edition_has_the_exercises_and_no_solution(html, student_html):
    for docname in pages_with_exercises():
        labels = [m[1] for m in EXERCISE_LABEL.findall(markdown_of(docname))]
        student = soup_of(student_html, docname)
        for label in labels:
            assert student.find(id=label) is not None, f"{docname}: exercise {label} is missing"
        assert not student.select("div.solution"), f"{docname}: the student edition shows a solution"
        assert "Solution to" not in student.get_text(" "), docname
        student_text = normalized(student.get_text(" "))
        for snippets in solution_snippets(soup_of(html, docname)):
            shown = [s for s in snippets if s in student_text]
            assert not shown, f"{docname}: the student edition contains solution text {shown[:2]}"


def test_student_edition_offers_no_notebook_or_launch(student_html):
    assert not list(student_html.rglob("*.ipynb")), "the student edition ships notebooks"
    assert not (student_html / "_sources").exists(), "the student edition ships its sources"
    for page in student_html.rglob("*.html"):
        text = page.read_text()
        for marker in ("dropdown-download-buttons", "dropdown-launch-buttons", "mybinder.org/v2/",
                       "colab.research.google.com/github/", ".ipynb\""):
            assert marker not in text, f"{page.name} links to the notebooks via {marker}"


def test_instructor_edition_launches_every_lesson_on_binder_and_colab(html):
    """The control for the test above: the markers it looks for are in the instructor edition."""
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    path = repo.removeprefix("https://github.com/")
    for docname in toc_pages():
        if not docname.startswith("chapters/"):
            continue
        text = (html / f"{docname}.html").read_text()
        assert f"_sources/{docname}.ipynb" in text, f"{docname}: no notebook download"
        assert f"https://mybinder.org/v2/gh/{path}/" in text, f"{docname}: no Binder button"
        assert f"https://colab.research.google.com/github/{path}/blob/main/{docname}.ipynb" in text, \
            f"{docname}: no Colab button"
