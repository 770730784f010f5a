"""Every lesson re-executes to the outputs it has stored, with 1 and with 2 torch threads.

nbval runs each notebook in a fresh kernel and compares every text output (glued numbers
included) with the stored one. Floating-point sums depend on the thread count and on the
instruction set the kernels use, so each notebook is checked twice: with two threads and the
CPU's own kernels, and with one thread and the narrowest kernels this CPU offers (PyTorch's
scalar code, MKL's SSE4.2 and oneDNN's SSE4.1 paths). Those sum in yet another order than the
AVX2 or AVX-512 kernels, as the kernels of an ARM CPU (an Apple-silicon laptop, an ARM cloud
machine) do: a printed number that comes out the same under both configurations does not hang on
one CPU's summation order. (The AVX2 kernels alone, the earlier second configuration, let a mean
of chaotic runs printed with two decimals pass.)
"""

import json
import os
import platform
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))


def test_there_are_lessons():
    assert NOTEBOOKS, "no notebooks found in chapters/"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_executed_top_to_bottom(notebook):
    """nbval skips cells without a stored execution, so a partly run notebook would test nothing."""
    cells = json.loads(notebook.read_text())["cells"]
    counts = [c["execution_count"] for c in cells if c["cell_type"] == "code"]
    assert counts == list(range(1, len(counts) + 1)), f"{notebook.name}: execution counts {counts}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_stores_no_widget_state(notebook):
    """Stored widget state makes the HTML page load ipywidgets' JavaScript from a CDN."""
    assert "widgets" not in json.loads(notebook.read_text())["metadata"], (
        f"{notebook.name} stores widget state: re-execute it with the README's command, whose "
        f"ClearMetadataPreprocessor options drop it")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_figure_says_what_it_shows(notebook):
    """Each figure is shown with lessonlib.alt_text.show: its alt text is the output's text (which
    nbval compares) and its image metadata (which the book's renderer puts into <img alt>)."""
    from lessonlib.alt_text import check_alt

    cells = json.loads(notebook.read_text())["cells"]
    figures = [(i, output) for i, cell in enumerate(cells) for output in cell.get("outputs", [])
               if "image/png" in output.get("data", {})]
    for i, output in figures:
        alt = output.get("metadata", {}).get("image/png", {}).get("alt")
        assert alt, f"{notebook.name}, cell {i}: a figure without alt text (show it with show(alt))"
        assert check_alt(alt) == alt
        assert "".join(output["data"]["text/plain"]) == alt, f"{notebook.name}, cell {i}"


# The narrowest kernels of an x86 CPU: another summation order than its own (AVX2 or AVX-512).
# Elsewhere (an ARM CPU) the CPU's own kernels.
NARROW_KERNELS = ({"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
                   "ONEDNN_MAX_CPU_ISA": "SSE41"}
                  if platform.machine().lower() in {"x86_64", "amd64"} else {})


def run_nbval(notebook: Path, threads: int, kernels: dict | None = None,
              course: Path = ROOT) -> subprocess.CompletedProcess:
    """Re-execute ``notebook`` of the course folder ``course`` in a fresh kernel with ``threads``
    torch threads (and the environment ``kernels``) and compare outputs."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "TQDM_DISABLE": "1", **(kernels or {})}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", "-q", "-p", "no:cacheprovider", str(notebook)],
        cwd=course, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def single_thread_runs(student_course):
    """Every lesson's one-thread run (with the narrowest kernels), as many at a time as the
    machine has cores.

    The runs use the student notebooks (tools/student_notebooks.py): their code cells and outputs
    are the lesson's (tests/test_student_notebooks.py checks it) apart from hidden cells that only
    serve solutions, so one run shows both that the lesson reproduces with one thread and that the
    student notebook runs top to bottom.

    A one-thread run uses one core, so on a 2-core machine two of them side by side take the time
    of one; the two-thread runs go one at a time, in their own tests.
    """
    longest_first = sorted(NOTEBOOKS, key=lambda notebook: -notebook.stat().st_size)   # a short one ends the run

    def run(lesson):
        return run_nbval(student_course / "chapters" / lesson.name, 1, NARROW_KERNELS, course=student_course)

    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        return dict(zip(longest_first, pool.map(run, longest_first)))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_and_student_notebook_reproduce_the_outputs_with_one_thread(notebook, single_thread_runs):
    result = single_thread_runs[notebook]
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_reproduces_its_outputs_with_two_threads(notebook):
    result = run_nbval(notebook, 2)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
