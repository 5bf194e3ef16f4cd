"""Every training lesson (03-10) has one scale switch: a cell tagged ``scale-parameters`` whose ``dScaleParams`` holds
the sizes of quick mode (CI), the CPU full mode (<= 45 min on 2 cores) and the accelerator full mode (CUDA / MPS)."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from course_utils import SCALES

REPO_ROOT = Path(__file__).resolve().parent.parent
SCALE_TAG = 'scale-parameters'
SCALED_LESSONS = sorted(p for p in (REPO_ROOT / 'notebooks').glob('[0-9][0-9]_*.ipynb') if int(p.name[:2]) >= 3)


def _ScaleCells(notebookPath: Path) -> list[str]:
    dNotebook = json.loads(notebookPath.read_text(encoding='utf-8'))
    return [''.join(dCell['source']) for dCell in dNotebook['cells']
            if dCell['cell_type'] == 'code' and SCALE_TAG in dCell.get('metadata', {}).get('tags', [])]


def ReadScaleParams(cellSource: str) -> dict[str, dict[str, Any]]:
    """The literal ``dScaleParams = {...}`` of a scale cell."""
    for oNode in ast.walk(ast.parse(cellSource)):
        if isinstance(oNode, ast.Assign) and any(isinstance(t, ast.Name) and t.id == 'dScaleParams'
                                                 for t in oNode.targets):
            return ast.literal_eval(oNode.value)
    raise AssertionError('the scale cell assigns no dScaleParams literal')


@pytest.mark.parametrize('notebookPath', SCALED_LESSONS, ids=lambda p: p.name)
def test_lesson_has_one_scale_switch(notebookPath: Path) -> None:
    lCells = _ScaleCells(notebookPath)
    assert len(lCells) == 1, f'{notebookPath.name}: expected one code cell tagged {SCALE_TAG!r}, got {len(lCells)}'
    cellSource = lCells[0]
    assert cellSource.startswith('# Scale Parameters') and 'GetScale(' in cellSource
    assert 'print(QUICK_MODE_NOTE)' in cellSource, f'{notebookPath.name}: quick mode must say its numbers are tiny'
    dScaleParams = ReadScaleParams(cellSource)
    assert tuple(dScaleParams) == SCALES, f'{notebookPath.name}: the scales are {SCALES}, got {tuple(dScaleParams)}'
    setKeys = set(dScaleParams['quick'])
    for scaleName, dParams in dScaleParams.items():
        assert set(dParams) == setKeys, f'{notebookPath.name}: {scaleName} has other parameters than quick'
    lSizes = [key for key in setKeys if key.startswith('num') and isinstance(dScaleParams['cpu'][key], (int, float))]
    for key in lSizes:
        valQuick, valCpu, valAcc = (dScaleParams[scaleName][key] for scaleName in SCALES)
        assert valQuick <= valCpu <= valAcc, f'{notebookPath.name}: {key} must not shrink with the scale, got ' \
                                             f'quick {valQuick}, cpu {valCpu}, accelerator {valAcc}'
    assert any(dScaleParams['accelerator'][key] > dScaleParams['cpu'][key] for key in lSizes), \
        f'{notebookPath.name}: the accelerator scale trains nothing larger than the CPU scale ({sorted(lSizes)})'


def test_scale_cell_reader_rejects_a_computed_table() -> None:
    with pytest.raises(ValueError):
        ReadScaleParams("dScaleParams = {'quick': {'numEpoch': 1 if x else 2}}")
    with pytest.raises(AssertionError, match='no dScaleParams'):
        ReadScaleParams('numEpoch = 3')
