"""Exercise notebooks: generated from the solutions, never drifting, stopping at their first fill cell."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tools import exercises
from tools.exercises import (ANSWER_CHECK_MARK, ANSWER_SUMMARY, FILL_END, FILL_START, PLACEHOLDER, SINGLE_LINE_MARKER,
                             STATEMENT_PLACEHOLDER, BlankSource, MarkerError, StripAnswers)
from tools.notebook_io import REPO_ROOT, LessonNotebooks

SOLUTION_NOTEBOOKS = LessonNotebooks(REPO_ROOT / 'notebooks')
EXERCISE_NOTEBOOKS = [exercises.ExercisePath(p) for p in SOLUTION_NOTEBOOKS]


def _CopyRepo(tmpPath: Path) -> Path:
    """A throw-away copy of what the generator reads and writes."""
    shutil.copy(REPO_ROOT / 'pyproject.toml', tmpPath / 'pyproject.toml')
    shutil.copytree(REPO_ROOT / 'notebooks', tmpPath / 'notebooks')
    return tmpPath


def _FillCellIndices(notebookPath: Path) -> list[int]:
    oNotebook = nbformat.read(notebookPath, as_version=4)
    return [ii for ii, oCell in enumerate(oNotebook.cells) if oCell.cell_type == 'code' and PLACEHOLDER in oCell.source]


def test_committed_exercises_are_what_the_generator_writes() -> None:
    assert exercises.main(['--check']) == 0, 'Run: make exercises'


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


# ------------------------------------------------------------------------------------------------
# Questions and their answers
# ------------------------------------------------------------------------------------------------
_QUESTION = re.compile(r'^\s*[*-] \(\?\)', re.M)


def _QuestionsWithoutAnswer(oNotebook: nbformat.NotebookNode) -> list[str]:
    """Each (?) question must be followed, before the next question, by an answer block."""
    lMissing = []
    for cellIdx, oCell in enumerate(oNotebook.cells):
        if oCell.cell_type != 'markdown':
            continue
        lStarts = [m.start() for m in _QUESTION.finditer(oCell.source)]
        for qIdx, startPos in enumerate(lStarts):
            nextPos = lStarts[qIdx + 1] if qIdx + 1 < len(lStarts) else len(oCell.source)
            # The answer sits under the question: in the same cell, or as the next markdown cell
            segment = oCell.source[startPos:nextPos]
            if qIdx + 1 == len(lStarts) and cellIdx + 1 < len(oNotebook.cells):
                oNext = oNotebook.cells[cellIdx + 1]
                if oNext.cell_type == 'markdown' and oNext.source.lstrip().startswith('<details'):
                    segment += oNext.source
            if ANSWER_SUMMARY not in segment:
                lMissing.append(f'cell {cellIdx}: {segment.strip().splitlines()[0][:80]}')
    return lMissing


@pytest.mark.parametrize('solutionPath', SOLUTION_NOTEBOOKS, ids=lambda p: p.name)
def test_every_question_has_an_answer_under_it(solutionPath: Path) -> None:
    lMissing = _QuestionsWithoutAnswer(nbformat.read(solutionPath, as_version=4))
    assert not lMissing, f'{solutionPath.name}: questions without <details><summary>Answer</summary>:\n' + '\n'.join(lMissing)


@pytest.mark.parametrize('exercisePath', EXERCISE_NOTEBOOKS, ids=lambda p: p.name)
def test_no_answer_leaks_into_the_exercise(exercisePath: Path) -> None:
    oNotebook = nbformat.read(exercisePath, as_version=4)
    for cellIdx, oCell in enumerate(oNotebook.cells):
        assert ANSWER_SUMMARY not in oCell.source and '<details' not in oCell.source, f'cell {cellIdx} holds an answer'
        assert not oCell.source.lstrip().startswith(ANSWER_CHECK_MARK), f'cell {cellIdx} checks an answer'


def test_answers_are_stripped_and_an_open_block_is_refused() -> None:
    source = ('* (?) How many?\n\n<details><summary>Answer</summary>\n\nSeven, since 3 + 4.\n\n</details>\n\n'
              '* (?) Why?\n<details>\n<summary>Answer</summary>Because.</details>')
    stripped, numAnswers = StripAnswers(source, 'nb, cell 3')
    assert numAnswers == 2
    assert stripped == '* (?) How many?\n\n* (?) Why?'
    with pytest.raises(MarkerError, match='nb, cell 3.*no closing'):
        StripAnswers('* (?) Q\n<details><summary>Answer</summary> never closed', 'nb, cell 3')


def test_the_question_check_finds_a_missing_answer() -> None:
    oNotebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell('* (?) One\n<details><summary>Answer</summary>A</details>\n* (?) Two'),
        nbformat.v4.new_markdown_cell('* (?) Three'),
        nbformat.v4.new_markdown_cell('<details><summary>Answer</summary>B</details>'),
    ])
    assert [s.split(': ', 1)[1] for s in _QuestionsWithoutAnswer(oNotebook)] == ['* (?) Two']
