"""Benchmark: execute every lesson in a fresh kernel and print the seconds each one takes and the
peak memory (resident set) of its kernel.

The outputs are not written back. Targets: each notebook <= 60 s and the whole course <= 5 min
on 2 cores; each kernel well under Binder's 2 GB (flagged above 1 GiB).

    OMP_NUM_THREADS=2 python bench/notebooks.py            # every lesson
    OMP_NUM_THREADS=2 python bench/notebooks.py 04 11      # the lessons whose names start so
"""

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
MEMORY_BUDGET_MIB = 1024

# Appended to the benchmark's copy of a notebook: the kernel's peak resident set in bytes
# (getrusage reports kilobytes on Linux, bytes on macOS).
PEAK_MEMORY_CELL = ("import resource, sys\n"
                    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == 'darwin' else 1024))")


def run(path: Path) -> tuple[float, float]:
    """Seconds to execute the notebook at ``path`` and its kernel's peak memory in MiB."""
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(PEAK_MEMORY_CELL))
    start = time.perf_counter()
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    return seconds, int(notebook.cells[-1].outputs[0]["text"]) / 2**20


def main(prefixes):
    os.environ.setdefault("TQDM_DISABLE", "1")
    paths = [p for p in sorted((ROOT / "chapters").glob("*.ipynb"))
             if not prefixes or p.name.startswith(tuple(prefixes))]
    if not paths:
        sys.exit(f"No lesson in chapters/ starts with {' or '.join(prefixes)}.")
    total = 0.0
    for path in paths:
        seconds, peak = run(path)
        total += seconds
        print(f"{path.name:45s} {seconds:6.1f} s{'  (over the 60 s budget)' if seconds > 60 else '':24s}"
              f"  peak memory {peak:5.0f} MiB{'  (over 1 GiB)' if peak > MEMORY_BUDGET_MIB else ''}")
    print(f"{'all lessons run':45s} {total:6.1f} s{'  (over the 5 min budget)' if total > 300 else ''}")


if __name__ == "__main__":
    main(sys.argv[1:])
