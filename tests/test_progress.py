"""The progress bars: notebook widgets only where ipywidgets imports, quiet text bars elsewhere."""

from __future__ import annotations

import importlib
import importlib.util
import warnings

import pytest
import tqdm.auto
import tqdm.std

import course_utils.progress as progress
import course_utils.training as training


def test_widget_bars_where_ipywidgets_imports() -> None:
    assert progress.HasWidgets() == (importlib.util.find_spec('ipywidgets') is not None)
    assert progress.tqdm is (tqdm.auto.tqdm if progress.HasWidgets() else tqdm.std.tqdm)
    assert training.tqdm is progress.tqdm  #<! TrainModel's bars come from here


def test_text_bars_without_ipywidgets(monkeypatch: pytest.MonkeyPatch) -> None:
    hFindSpec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *args: None if name == 'ipywidgets' else hFindSpec(name, *args))
    try:
        oModule = importlib.reload(progress)
        assert not oModule.HasWidgets()
        assert oModule.tqdm is tqdm.std.tqdm
        with warnings.catch_warnings():
            warnings.simplefilter('error')  #<! No "IProgress not found" warning
            with oModule.tqdm(total=3, disable=False) as oBar:
                oBar.update(3)
    finally:
        monkeypatch.undo()
        importlib.reload(progress)
