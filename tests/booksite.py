"""Helpers for the tests of the built book: the pages of the toc, their markdown, their glued values."""

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

GLUE_TEXT = re.compile(r"\{glue:text\}`([^`]+)`")
SOLUTION_DIRECTIVE = re.compile(r"^(`{3,}|:{3,})\{solution\}\s+(\S+)", re.MULTILINE)
EXERCISE_LABEL = re.compile(r"^(`{3,}|:{3,})\{exercise\}.*\n(?:\s*:[a-z-]+:.*\n)*?\s*:label:\s*(\S+)",
                            re.MULTILINE)


def toc_pages() -> list[str]:
    """Every page of _toc.yml in reading order, as docnames ("intro", "chapters/01_...")."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(str(Path(entry["file"]).with_suffix("")))
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return pages


def source_of(docname: str) -> Path:
    """The source file (.ipynb or .md) of a page of the toc."""
    for suffix in (".ipynb", ".md"):
        path = ROOT / f"{docname}{suffix}"
        if path.is_file():
            return path
    raise FileNotFoundError(f"no .ipynb or .md source for toc entry {docname!r}")


def markdown_of(docname: str) -> str:
    """The markdown text of a page: the markdown cells of a notebook, or the .md file."""
    path = source_of(docname)
    if path.suffix == ".md":
        return path.read_text()
    cells = json.loads(path.read_text())["cells"]
    return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def glued_values(docname: str) -> dict[str, str]:
    """The text/plain value of every variable a notebook glues, as stored in its outputs."""
    path = source_of(docname)
    if path.suffix != ".ipynb":
        return {}
    values = {}
    for cell in json.loads(path.read_text())["cells"]:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            text = output.get("data", {}).get("application/papermill.record/text/plain")
            if name and text is not None:
                values[name] = text if isinstance(text, str) else "".join(text)
    return values


def expected_glue_texts(docname: str) -> list[str]:
    """The text each `{glue:text}` role of a page must show, formatted as myst-nb formats it."""
    from myst_nb.core.variables import format_plain_text

    values = glued_values(docname)
    expected = []
    for ref in GLUE_TEXT.findall(markdown_of(docname)):
        if "::" in ref:  # a value glued in another document: the raw-glue checks cover it
            continue
        key, fmt = ref.rsplit(":", 1) if ":" in ref else (ref, "s")
        assert key in values, f"{docname}: {{glue:text}} uses {key!r}, which the notebook does not glue"
        expected.append(format_plain_text(values[key], fmt))
    return expected
