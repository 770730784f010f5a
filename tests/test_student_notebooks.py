"""The student notebooks (tools/student_notebooks.py): the lessons without a word of their solutions.

Each student notebook is re-run top to bottom by nbval in tests/test_notebooks.py (its one-thread
runs use the student notebooks, whose code cells are the lesson's, as checked here).
"""

import importlib.util
import json
import re

import pytest

from booksite import EXERCISE_LABEL, ROOT, SOLUTION_DIRECTIVE

LESSONS = sorted((ROOT / "chapters").glob("*.ipynb"))
GLUE_CALL = re.compile(r"""\bglue\(\s*f?["']([^"'{]+)""")
GLUE_ROLE = re.compile(r"\{glue:text\}`([^`:]+)")

spec = importlib.util.spec_from_file_location("student_notebooks", ROOT / "tools" / "student_notebooks.py")
student_notebooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(student_notebooks)


def cells_of(path):
    return json.loads(path.read_text())["cells"]


def markdown(cells):
    return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def solution_blocks(text):
    """The text of each {solution} block of a lesson's markdown, fences included."""
    blocks = student_notebooks.split_solutions(text)[1]
    assert len(blocks) == len(SOLUTION_DIRECTIVE.findall(text))
    return blocks


def is_solution_cell(cell):
    return student_notebooks.SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def test_a_solution_block_is_removed_with_its_nested_fences():
    text = ("Intro.\n\n````{exercise} Try\n:label: ex-a\n\nDo it.\n````\n\n"
            "````{solution} ex-a\n:class: dropdown\n\n```python\nanswer = 42\n```\n\n:::{note}\nNested.\n:::\n````\n\n"
            "Outro.\n\n:::{solution} ex-b\nShort answer.\n:::\n")
    assert student_notebooks.without_solution_blocks(text) == (
        "Intro.\n\n````{exercise} Try\n:label: ex-a\n\nDo it.\n````\n\nOutro.\n")


def test_an_unclosed_solution_block_is_an_error():
    with pytest.raises(ValueError, match="never closed"):
        student_notebooks.without_solution_blocks("```{solution} ex-a\nAnswer.\n")


def test_the_command_refuses_to_replace_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an earlier output"):
        student_notebooks.write_student_notebooks(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_no_solution_text_survives(lesson, student_course):
    """No solution directive, and no line of a solution that the lesson says nowhere else."""
    cells = cells_of(lesson)
    lesson_markdown = markdown(cells)
    blocks = solution_blocks(lesson_markdown)
    assert blocks, f"{lesson.name} has no solution to remove"
    rest = lesson_markdown
    for block in blocks:
        rest = rest.replace(block, "")
    rest += json.dumps([c for c in cells if c["cell_type"] == "code" and not is_solution_cell(c)])
    student = (student_course / "chapters" / lesson.name).read_text()
    assert "{solution}" not in student
    for block in blocks:
        for line in block.splitlines():
            line = line.strip()
            if len(line) >= 25 and line not in rest and json.dumps(line)[1:-1] not in rest:
                assert line not in student and json.dumps(line)[1:-1] not in student, (
                    f"{lesson.name}: solution text survives: {line!r}")


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_exercises_code_and_outputs_are_kept(lesson, student_course):
    """Every exercise stays, and the code cells (checks included) are the lesson's, outputs and all,
    apart from the cells tagged `solution`."""
    cells = cells_of(lesson)
    student = cells_of(student_course / "chapters" / lesson.name)
    labels = [m[1] for m in EXERCISE_LABEL.findall(markdown(cells))]
    assert labels and [m[1] for m in EXERCISE_LABEL.findall(markdown(student))] == labels
    assert [c for c in student if c["cell_type"] == "code"] == [
        c for c in cells if c["cell_type"] == "code" and not is_solution_cell(c)]


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_hidden_cells_that_serve_only_solutions_are_tagged_solution(lesson):
    """A hidden cell whose glued values only solutions quote would hand out a solution's numbers
    (and its code): it must carry the tag `solution`, which drops it from the student notebooks."""
    cells = cells_of(lesson)
    solutions = "".join(solution_blocks(markdown(cells)))
    outside = markdown(cells)
    for block in solution_blocks(outside):
        outside = outside.replace(block, "")
    for i, cell in enumerate(cells):
        tags = cell.get("metadata", {}).get("tags", [])
        names = GLUE_CALL.findall("".join(cell["source"])) if cell["cell_type"] == "code" else []
        quoted = [n for n in names if f"`{n}" in solutions]
        if "remove-cell" in tags and quoted and not any(f"`{n}" in outside for n in names):
            assert student_notebooks.SOLUTION_TAG in tags, (
                f"{lesson.name}, cell {i}: glues {quoted} for solutions only; tag it `solution`")


def test_the_course_folder_has_what_the_notebooks_need(student_course):
    """What the notebooks import and how to install it travel with them (Binder reads binder/);
    that the notebooks run there is shown by the one-thread nbval runs (tests/test_notebooks.py)."""
    for name in ("lessonlib/__init__.py", "pyproject.toml", "requirements.txt", "binder/postBuild",
                 "conftest.py", "README.md"):
        assert (student_course / name).is_file(), name
    assert len(list((student_course / "chapters").glob("*.ipynb"))) == len(LESSONS)
