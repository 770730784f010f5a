"""Benchmark: execute every lesson in a fresh kernel and print the seconds each one takes.

The outputs are not written back. Targets: each notebook <= 60 s and the whole course <= 5 min
on 2 cores.

    OMP_NUM_THREADS=2 python bench/notebooks.py
"""

import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def main():
    os.environ.setdefault("TQDM_DISABLE", "1")
    total = 0.0
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        NotebookClient(notebook, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        seconds = time.perf_counter() - start
        total += seconds
        print(f"{path.name:45s} {seconds:6.1f} s{'  (over the 60 s budget)' if seconds > 60 else ''}")
    print(f"{'all lessons':45s} {total:6.1f} s{'  (over the 5 min budget)' if total > 300 else ''}")


if __name__ == "__main__":
    main()
