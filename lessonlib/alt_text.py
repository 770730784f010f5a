"""Figures that say what they show: each lesson figure carries an alt text.

A screen reader announces an image by its alt text, and a reader whose image did not load sees it
in its place. A lesson shows a figure with ``show(alt)`` instead of ``plt.show()``: ``alt`` is one
or two sentences on the point of the figure (what is plotted against what, and what it shows),
computed from the run where the point depends on it. The notebook stores it twice: as the
output's text (``text/plain``, which nbval compares on every re-run, so a computed alt text must
come out the same on every CPU) and in the output's metadata, ``{"image/png": {"alt": alt}}``,
from which the book's renderer (:mod:`lessonlib.book_renderer`) writes it into the page's
``<img alt="...">``.
"""

import re

import matplotlib.pyplot as plt

MIN_WORDS = 8
"""An alt text shorter than this names a figure rather than describing it."""

LOOKS_LIKE_A_FILE = re.compile(r"(^|[\s/\\])[\w.-]+\.(png|jpe?g|svg|gif|pdf)\b|^\.{0,2}/", re.IGNORECASE)


def check_alt(alt) -> str:
    """``alt`` with surrounding whitespace removed, or a ValueError that says what is wrong.

    An alt text is a description in words: at least ``MIN_WORDS`` words, and not a file name or path.
    """
    if not isinstance(alt, str):
        raise TypeError(f"alt must be a str describing the figure, got {type(alt).__name__}")
    alt = " ".join(alt.split())
    if LOOKS_LIKE_A_FILE.search(alt):
        raise ValueError(f"alt must describe the figure in words, not name a file: {alt!r}")
    if len(alt.split()) < MIN_WORDS:
        raise ValueError(f"alt must describe what the figure shows in at least {MIN_WORDS} words "
                         f"(what is plotted and what it shows), got {alt!r}")
    return alt


def show(alt: str, fig=None) -> None:
    """Display ``fig`` (default: the current figure) with the alt text ``alt``, then close it.

    In a notebook the figure becomes a PNG output whose text and metadata hold ``alt``; outside
    IPython it is shown as ``plt.show()`` would show it.
    """
    alt = check_alt(alt)
    fig = plt.gcf() if fig is None else fig
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # plain Python without IPython
        get_ipython = lambda: None  # noqa: E731
    if get_ipython() is None:
        plt.show()
        return
    data, metadata = get_ipython().display_formatter.format(fig)
    data["text/plain"] = alt
    metadata["image/png"] = {**metadata.get("image/png", {}), "alt": alt}
    display(data, metadata=metadata, raw=True)
    plt.close(fig)
