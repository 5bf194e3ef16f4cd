"""Progress bars: widgets in a notebook while they run, plain text once they close; text bars everywhere else.

``tqdm.auto`` picks the notebook widget bar whenever it runs in a Jupyter kernel. Two problems with it, both fixed here:

- Without ``ipywidgets`` (a plain Jupyter install next to ``pip install course-utils``) that bar prints
  "IProgress not found" and falls back to many lines of text. ``ipywidgets`` is a dependency of the course, so this
  is the rare case; it is detected once and the text bar is used quietly.
- A widget lives only as long as its kernel. A notebook saved with a widget bar in its outputs and reopened without
  that kernel (or run by nbconvert / nbmake, or shown on the course website) shows "Error displaying widget: model
  not found" for every bar. ``NotebookBar`` therefore replaces its widget by a plain text line when it closes: the
  final state of the bar (``leave=True``, or a bar stopped early by an error), or nothing (``leave=False``).
"""

from __future__ import annotations

import importlib.util
from typing import Any


def HasWidgets() -> bool:
    """Whether ``ipywidgets``, which the notebook bars draw with, can be imported."""
    return importlib.util.find_spec('ipywidgets') is not None


_AutoTqdm: Any = None
if HasWidgets():
    from tqdm.auto import tqdm as _AutoTqdm
    from tqdm.notebook import tqdm as _NotebookTqdm

if _AutoTqdm is not None and issubclass(_AutoTqdm, _NotebookTqdm):  #<! In a Jupyter kernel
    class NotebookBar(_AutoTqdm):
        """tqdm's notebook bar, shown through a display handle so that closing it can swap the widget for text."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs['display'] = False  #<! Displayed below, with a handle to update
            super().__init__(*args, **kwargs)
            self._oHandle = None
            if not self.disable:
                from tqdm.notebook import display  #<! IPython's display, as tqdm imports it (ipywidgets brings IPython)
                self._oHandle = display(self.container, display_id=True)
                self.displayed = True

        def close(self) -> None:
            wasOpen = not self.disable and self._oHandle is not None
            super().close()  #<! Sets self.disable: a second close does nothing
            if wasOpen:
                isStoppedEarly = bool(self.total) and self.n < self.total
                text = self.format_meter(**self.format_dict) if self.leave or isStoppedEarly else ''
                self._oHandle.update({'text/plain': text}, raw=True)
                self._oHandle = None

    tqdm = NotebookBar
elif _AutoTqdm is not None:  #<! ipywidgets, but no kernel: tqdm.auto's text bar
    tqdm = _AutoTqdm
else:  #<! Text bars: no warning, one line updated in place
    from tqdm.std import tqdm

__all__ = ['HasWidgets', 'tqdm']
