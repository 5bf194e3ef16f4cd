"""Exercise notebooks: generated from the solutions, never drifting, stopping at their first fill cell."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from course_utils import exercises
from course_utils.colab import LessonNotebooks
from course_utils.exercises import (FILL_END, FILL_START, PLACEHOLDER, SINGLE_LINE_MARKER, STATEMENT_PLACEHOLDER,
                                    BlankSource, MarkerError)

REPO_ROOT = Path(__file__).resolve().parent.parent
EXERCISE_NOTEBOOKS = [exercises.ExercisePath(p) for p in LessonNotebooks(REPO_ROOT / 'notebooks')]


def _CopyRepo(tmpPath: Path) -> Path:
    """A throw-away copy of what the generator reads and writes."""
    shutil.copy(REPO_ROOT / 'pyproject.toml', tmpPath / 'pyproject.toml')
    shutil.copytree(REPO_ROOT / 'notebooks', tmpPath / 'notebooks')
    return tmpPath


def _FillCellIndices(notebookPath: Path) -> list[int]:
    oNotebook = nbformat.read(notebookPath, as_version=4)
    return [ii for ii, oCell in enumerate(oNotebook.cells) if oCell.cell_type == 'code' and PLACEHOLDER in oCell.source]


def test_committed_exercises_are_what_the_generator_writes() -> None:
    assert exercises.main(['--check']) == 0, 'Run: python -m course_utils.exercises'


@pytest.mark.parametrize('exercisePath', EXERCISE_NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_has_a_fill_block_and_no_outputs(exercisePath: Path) -> None:
    assert _FillCellIndices(exercisePath), f'{exercisePath.name} has no fill block'
    dNotebook = json.loads(exercisePath.read_text(encoding='utf-8'))
    assert all(dCell.get('outputs', []) == [] for dCell in dNotebook['cells'])
    assert 'Exercise version' in ''.join(dNotebook['cells'][1]['source'])


def test_generating_twice_changes_nothing(tmp_path: Path) -> None:
    repoCopy = _CopyRepo(tmp_path)
    assert exercises.main(['--root', str(repoCopy)]) == 0
    dBefore = {p: p.read_bytes() for p in (repoCopy / 'notebooks' / 'exercises').glob('*.ipynb')}
    assert exercises.main(['--root', str(repoCopy)]) == 0
    assert {p: p.read_bytes() for p in dBefore} == dBefore


def test_drift_is_detected_when_a_solution_changes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    repoCopy = _CopyRepo(tmp_path)
    assert exercises.main(['--check', '--root', str(repoCopy)]) == 0
    solutionPath = LessonNotebooks(repoCopy / 'notebooks')[0]
    oNotebook = nbformat.read(solutionPath, as_version=4)
    oCell = next(oCell for oCell in oNotebook.cells if FILL_START in oCell.source)
    oCell.source = oCell.source.replace(FILL_END, f'extraLine = 1\n{FILL_END}')
    nbformat.write(oNotebook, solutionPath)
    assert exercises.main(['--check', '--root', str(repoCopy)]) == 1
    assert solutionPath.name in capsys.readouterr().out
    assert exercises.main(['--root', str(repoCopy)]) == 0  #<! Regenerating fixes it
    assert exercises.main(['--check', '--root', str(repoCopy)]) == 0


def test_blocks_keep_instructions_and_blank_the_code() -> None:
    source = '\n'.join(['x = 1', FILL_START, '# Compute y.', 'y = x + 1', 'vZ[0], w = y, 2', FILL_END,
                        f'k = 3 {SINGLE_LINE_MARKER}'])
    blanked, numBlocks = BlankSource(source, 'nb, cell 0')
    assert numBlocks == 2
    assert blanked.split('\n') == ['x = 1', FILL_START, '# Compute y.', f'y = {PLACEHOLDER}', f'vZ[0], w = {PLACEHOLDER}',
                                   FILL_END, f'k = {PLACEHOLDER} {SINGLE_LINE_MARKER}']


def test_a_block_with_statements_becomes_one_placeholder() -> None:
    source = '\n'.join([FILL_START, 'for ii in range(3):', '    total += ii', FILL_END])
    assert BlankSource(source, 'nb, cell 0')[0].split('\n') == [FILL_START, STATEMENT_PLACEHOLDER, FILL_END]


@pytest.mark.parametrize(('lLines', 'message'), [
    ([FILL_START, 'x = 1'], 'never closed'),
    (['x = 1', FILL_END], 'without a Fill This start'),
    ([FILL_START, FILL_START, 'x = 1', FILL_END, FILL_END], 'nested'),
])
def test_unbalanced_or_nested_markers_are_refused(lLines: list[str], message: str) -> None:
    with pytest.raises(MarkerError, match=f'03_Lesson.ipynb, cell 7.*{message}'):
        BlankSource('\n'.join(lLines), '03_Lesson.ipynb, cell 7')


def test_the_command_reports_bad_markers(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    repoCopy = _CopyRepo(tmp_path)
    solutionPath = LessonNotebooks(repoCopy / 'notebooks')[-1]
    oNotebook = nbformat.read(solutionPath, as_version=4)
    oNotebook.cells.append(nbformat.v4.new_code_cell(f'{FILL_START}\nx = 1'))
    nbformat.write(oNotebook, solutionPath)
    assert exercises.main(['--root', str(repoCopy)]) == 2
    assert f'{solutionPath.name}, cell {len(oNotebook.cells) - 1}' in capsys.readouterr().err


@pytest.mark.parametrize('exercisePath', EXERCISE_NOTEBOOKS, ids=lambda p: p.name)
def test_exercise_fails_at_its_first_fill_cell_and_not_before(exercisePath: Path) -> None:
    oNotebook = nbformat.read(exercisePath, as_version=4)
    firstFillIdx = _FillCellIndices(exercisePath)[0]
    oNotebook.cells = oNotebook.cells[:firstFillIdx + 1]  #<! Nothing after the first fill cell needs to run
    oClient = NotebookClient(oNotebook, timeout=300, kernel_name='python3',
                             resources={'metadata': {'path': str(exercisePath.parent)}})
    with pytest.raises(CellExecutionError):
        oClient.execute()
    dErrors = {ii: o for ii, oCell in enumerate(oNotebook.cells) for o in oCell.get('outputs', [])
               if o.get('output_type') == 'error'}
    assert list(dErrors) == [firstFillIdx]
    oError = dErrors[firstFillIdx]
    assert oError['ename'] == 'SyntaxError' or (oError['ename'] == 'NotImplementedError' and PLACEHOLDER in oError['evalue'])
