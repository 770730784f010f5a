"""Shared fixtures for the tests of the built book.

The book is built once per test session (instructor edition, and the student edition when a test
asks for it); test_book, test_links, test_editions and test_browser all read the same build.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"


def build_book(out: Path, *extra: str) -> Path:
    """Build the book from ROOT into `out` with warnings as errors; return the HTML folder."""
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    result = subprocess.run(
        [str(jupyter_book), "build", str(ROOT), *extra, "--path-output", str(out),
         "-W", "-n", "--keep-going"],
        cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return out / "_build" / "html"


@pytest.fixture(scope="session")
def html(tmp_path_factory) -> Path:
    """The instructor edition (the default build, `_config.yml`), built once per session."""
    return build_book(tmp_path_factory.mktemp("book"))


@pytest.fixture(scope="session")
def student_html(tmp_path_factory) -> Path:
    """The student edition (`_config_student.yml`), built once per session."""
    return build_book(tmp_path_factory.mktemp("student"), "--config", str(ROOT / "_config_student.yml"))


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Folder for screenshots (git-ignored), kept after the run so a person can look at them."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def student_course(tmp_path_factory) -> Path:
    """The student notebooks' course folder, written by the README's command once per session."""
    out = tmp_path_factory.mktemp("student_notebooks") / "course"
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "student_notebooks.py"), str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return out
