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
    assert progress.tqdm is (tqdm.auto.tqdm if progress.HasWidgets() else tqdm.std.tqdm)  #<! Outside a kernel: text
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


def test_notebook_bars_leave_text_not_widgets_in_the_saved_outputs(tmp_path) -> None:
    """In a real kernel (nbclient, as nbmake and the website run the lessons): while a bar runs it is a widget; once
    closed, the saved output holds its text (leave=True or stopped early) or nothing (leave=False), never a widget
    view whose model is gone when the notebook is reopened."""
    nbformat = pytest.importorskip('nbformat')
    nbclient = pytest.importorskip('nbclient')
    pytest.importorskip('ipykernel')
    oNb = nbformat.v4.new_notebook()
    oNb.cells = [nbformat.v4.new_code_cell(source) for source in (
        'from course_utils.progress import tqdm, NotebookBar\nassert tqdm is NotebookBar, tqdm',
        "for _ in tqdm(range(3), desc='Epochs'):\n    pass",
        "oBar = tqdm(total=4, desc='Train', leave=False)\noBar.update(4)\noBar.close()\noBar.close()",
        "oBar = tqdm(total=4, desc='Stopped')\noBar.update(1)\noBar.close()",
    )]
    nbclient.NotebookClient(oNb, timeout=120, kernel_name='python3').execute()
    lOutputs = [oCell.outputs for oCell in oNb.cells]
    for oCell in oNb.cells:
        for oOut in oCell.outputs:
            assert 'application/vnd.jupyter.widget-view+json' not in oOut.get('data', {}), oOut
            assert oOut.get('output_type') != 'error', oOut
    lTexts = [[oOut['data']['text/plain'] for oOut in lCell if 'data' in oOut] for lCell in lOutputs]
    assert len(lTexts[1]) == 1 and lTexts[1][0].startswith('Epochs: 100%') and '3/3' in lTexts[1][0]
    assert lTexts[2] == ['']
    assert len(lTexts[3]) == 1 and 'Stopped:  25%' in lTexts[3][0] and '1/4' in lTexts[3][0]
