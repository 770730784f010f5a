"""The lessons without their solutions, as notebooks an instructor can hand out.

    .venv/bin/python tools/student_notebooks.py [OUT]        (OUT defaults to _build/student_notebooks)

writes OUT as a course a learner can run, on a laptop or on Binder:

- ``chapters/*.ipynb``: every lesson with each ``{solution}`` block removed from its markdown and
  each code cell tagged ``solution`` removed (the book's hidden cells that compute the numbers a
  solution quotes). Everything else stays as it is in the lesson: the exercises, their code cells
  and ``lessonlib`` checks, and every stored output.
- ``lessonlib/``, ``pyproject.toml``, ``requirements.txt``, ``binder/`` and ``conftest.py``: what the
  lessons import, how to install it locally or on Binder, and nbval's settings.
- ``README.md``: how to run the notebooks.

OUT may be new or an earlier output of this command (which it replaces).
``tests/test_student_notebooks.py`` checks that no solution text survives, and the tests re-run
every student notebook with nbval.
"""

import argparse
import json
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOLUTION_TAG = "solution"
COPIED = ["lessonlib", "binder", "pyproject.toml", "requirements.txt", "conftest.py"]

OPENING_FENCE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}")

README = """\
# Weight Initialization, Measured: student notebooks

The lessons of the course, with their exercises and without the solutions.

Locally (Python 3.11):

    python3 -m venv .venv && .venv/bin/pip install -r requirements.txt
    .venv/bin/jupyter lab chapters

On Binder, push this folder to a repository (or a branch of its own) and open
`https://mybinder.org/v2/gh/OWNER/REPOSITORY/BRANCH?urlpath=lab/tree/chapters`.
"""


def split_solutions(markdown: str) -> tuple[str, list[str]]:
    """``markdown`` without its ``{solution}`` directive blocks, and the text of each block.

    A block (backtick or colon fence) ends at the first line that is only its fence character, at
    least as long as the opening fence; fences nested inside it (code, other directives) are
    shorter or of the other character, as MyST requires. Blank lines left at a seam collapse to one.
    """
    kept, blocks, closing = [], [], None
    for line in markdown.splitlines(keepends=True):
        if closing is not None:
            blocks[-1] += line
            fence = line.strip()
            if fence and set(fence) == {closing[0]} and len(fence) >= len(closing):
                closing = None
            continue
        opening = OPENING_FENCE.match(line)
        if opening and opening["name"] == "solution":
            closing = opening["fence"]
            blocks.append(line)
            continue
        kept.append(line)
    if closing is not None:
        raise ValueError(f"a {{solution}} block opened with {closing} is never closed")
    text = re.sub(r"\n{3,}", "\n\n", "".join(kept))
    return text.strip("\n") + ("\n" if text.endswith("\n") and text.strip() else ""), blocks


def without_solution_blocks(markdown: str) -> str:
    """``markdown`` with every ``{solution}`` block removed (see :func:`split_solutions`)."""
    return split_solutions(markdown)[0]


def student_notebook(lesson: dict) -> dict:
    """The student version of one lesson notebook (a new dict; ``lesson`` is left as it is)."""
    cells = []
    for cell in lesson["cells"]:
        if SOLUTION_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        if cell["cell_type"] == "markdown":
            text = without_solution_blocks("".join(cell["source"]))
            if not text.strip():
                continue
            cell = {**cell, "source": text.splitlines(keepends=True)}
        cells.append(cell)
    return {**lesson, "cells": cells}


def write_student_notebooks(out: Path) -> list[Path]:
    """Write the student course into ``out`` (replaced if it exists); return its notebooks."""
    out = Path(out).resolve()
    if out.exists():
        if (out / "README.md").is_file() and (out / "README.md").read_text() == README:
            shutil.rmtree(out)   # an earlier output of this command
        else:
            raise FileExistsError(f"{out} exists and is not an earlier output of this command; "
                                  f"name a new folder or remove it first")
    (out / "chapters").mkdir(parents=True)
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, out / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, out / name)
    (out / "README.md").write_text(README)
    written = []
    for lesson_path in sorted((ROOT / "chapters").glob("*.ipynb")):
        notebook = student_notebook(json.loads(lesson_path.read_text()))
        target = out / "chapters" / lesson_path.name
        target.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
        written.append(target)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", default=ROOT / "_build" / "student_notebooks", type=Path,
                        help="the folder to write (default: _build/student_notebooks)")
    out = parser.parse_args(argv).out
    notebooks = write_student_notebooks(out)
    print(f"{len(notebooks)} student notebooks in {Path(out).resolve() / 'chapters'}")


if __name__ == "__main__":
    main()
