"""Notebooks are committed clean: no outputs, no execution counts, a stated goal, the course notation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / 'notebooks'
LESSON_NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob('[0-9][0-9]_*.ipynb'))


def test_there_are_lesson_notebooks() -> None:
    assert LESSON_NOTEBOOKS, f'No numbered notebooks found in {NOTEBOOKS_DIR}'


@pytest.mark.parametrize('notebookPath', LESSON_NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(notebookPath: Path) -> None:
    dNotebook = json.loads(notebookPath.read_text(encoding='utf-8'))
    for cellIdx, dCell in enumerate(dNotebook['cells']):
        if dCell['cell_type'] == 'code':
            assert dCell['outputs'] == [], f'{notebookPath.name} cell {cellIdx} has outputs: clear them'
            assert dCell['execution_count'] is None, f'{notebookPath.name} cell {cellIdx} has an execution count'


@pytest.mark.parametrize('notebookPath', LESSON_NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_states_its_goal_and_notation(notebookPath: Path) -> None:
    dNotebook = json.loads(notebookPath.read_text(encoding='utf-8'))
    markdownText = '\n'.join(''.join(dCell['source']) for dCell in dNotebook['cells'] if dCell['cell_type'] == 'markdown')
    assert '**Goal**' in markdownText, f'{notebookPath.name} does not state its goal'
    assert '## Notations' in markdownText, f'{notebookPath.name} has no notation cell'
