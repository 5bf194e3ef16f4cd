"""Progress bars: widgets in a notebook that can show them, plain text bars everywhere else.

``tqdm.auto`` picks the notebook widget bar whenever it runs in a Jupyter kernel. Without ``ipywidgets`` (a plain
Jupyter install next to ``pip install course-utils``) that bar prints "IProgress not found" and falls back to many
lines of text. ``ipywidgets`` is a dependency of the course, so this is the rare case; here it is detected once and
the text bar is used quietly.
"""

from __future__ import annotations

import importlib.util


def HasWidgets() -> bool:
    """Whether ``ipywidgets``, which the notebook bars draw with, can be imported."""
    return importlib.util.find_spec('ipywidgets') is not None


if HasWidgets():
    from tqdm.auto import tqdm
else:  #<! Text bars: no warning, one line updated in place
    from tqdm.std import tqdm

__all__ = ['HasWidgets', 'tqdm']
