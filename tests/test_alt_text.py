"""Alt texts: the check that keeps file names and one-word labels out, and show() in a kernel."""

import subprocess
import sys

import pytest

from lessonlib.alt_text import MIN_WORDS, check_alt

DESCRIPTION = "Loss against epoch for two schemes: He falls below Xavier after the first epoch."


def test_a_description_is_accepted_with_its_whitespace_normalised():
    assert check_alt(f"  {DESCRIPTION}\n ") == DESCRIPTION
    assert check_alt("Loss against\n   epoch for two schemes: He falls below Xavier.") == (
        "Loss against epoch for two schemes: He falls below Xavier.")


@pytest.mark.parametrize("alt", [
    "../_images/330cf27e.png",
    "330cf27e9a.png",
    "figure saved as curves.svg shows the loss against epoch for each scheme",
    "/tmp/figure",
    "./figure of the loss against the epoch for each of the schemes",
])
def test_a_file_name_or_path_is_rejected(alt):
    with pytest.raises(ValueError, match="not name a file"):
        check_alt(alt)


@pytest.mark.parametrize("alt", ["", "   ", "Learning curves", "Loss per epoch for each scheme"])
def test_a_label_shorter_than_a_description_is_rejected(alt):
    assert len(alt.split()) < MIN_WORDS
    with pytest.raises(ValueError, match=f"at least {MIN_WORDS} words"):
        check_alt(alt)


@pytest.mark.parametrize("alt", [None, 3, ["a list"]])
def test_an_alt_that_is_not_text_is_rejected(alt):
    with pytest.raises(TypeError, match="must be a str"):
        check_alt(alt)


def test_show_in_a_kernel_stores_the_alt_text_as_text_and_metadata(tmp_path):
    """One PNG output whose text/plain (compared by nbval) and image metadata (read by the book's
    renderer) are the alt text, and no second copy of the figure at the end of the cell."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import matplotlib.pyplot as plt\n"
        "from lessonlib.alt_text import show\n"
        "plt.plot([0, 1], [0, 1])\n"
        f"show({DESCRIPTION!r})\n")])
    NotebookClient(notebook, kernel_name="python3", timeout=120).execute()
    outputs = notebook.cells[0].outputs
    assert len(outputs) == 1, outputs
    assert "image/png" in outputs[0].data
    assert outputs[0].data["text/plain"] == DESCRIPTION
    assert outputs[0].metadata["image/png"]["alt"] == DESCRIPTION


def test_show_outside_ipython_shows_the_figure_as_plt_show_does():
    script = ("import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
              "from lessonlib.alt_text import show\nplt.plot([0, 1])\n"
              f"show({DESCRIPTION!r})\nprint(len(plt.get_fignums()))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


def test_show_rejects_a_bad_alt_before_drawing():
    with pytest.raises(ValueError, match="not name a file"):
        from lessonlib.alt_text import show
        show("figure.png")
