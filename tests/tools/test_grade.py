"""The grader, on a synthetic lesson: its solution passes every exercise, its generated exercise version attempts
none, and a student's wrong, crashing and endless answers are told apart."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from tools import exercises, grade
from tools.exercises import EXERCISE_KEY, FILL_END, FILL_START, SINGLE_LINE_MARKER, IsBlankLine
from tools.exercises import ExerciseCodeCell as _CodeCell
from tools.grade import (ERROR, FAILED, NOT_ATTEMPTED, PASSED, ClassifyExercise, FormatTable, GradeNotebook, Outcome,
                         Result)
from tools.notebook_io import REPO_ROOT


def _Mutant(name: str, old: str, new: str) -> dict:
    return {'name': name, 'replace': [[old, new]]}


def _SolutionCells() -> list[nbformat.NotebookNode]:
    """Three exercises: a function checked by the next cell, a single line checking itself, a top-level block."""
    return [
        nbformat.v4.new_markdown_cell('# Tiny Lesson'),
        _CodeCell("import math, os\nassert os.environ.get('COURSE_QUICK') == '1' and os.path.isfile('01_Tiny.ipynb')\n"
                  'lValues = [3.0, 1.0, 2.0]', 'data'),
        _CodeCell(f'def MeanOf(lX):\n    {FILL_START}\n    # The mean.\n    return sum(lX) / len(lX)\n    {FILL_END}',
                  'fill-mean', {'name': 'MeanOf', 'hint': 'sum, then divide by the count', 'check': 'check-mean',
                                'setup': ['data'], 'mutants': [_Mutant('halves', '/ len(lX)', '/ 2'),
                                                               _Mutant('the sum', '/ len(lX)', '/ 1')]}),
        _CodeCell("valGot = MeanOf(lValues)\nassert math.isclose(valGot, 2.0), f'Expected 2.0, got {valGot}'\n"
                  "print('MeanOf: OK')", 'check-mean'),
        _CodeCell(f'numH, numW = 3, 4\nvalArea = numH * numW  {SINGLE_LINE_MARKER}\n'
                  "assert valArea == 12, f'3 x 4: expected 12, got {valArea}'", 'fill-area',
                  {'name': 'Area', 'hint': 'height times width', 'check': 'fill-area',
                   'mutants': [_Mutant('sum', 'numH * numW', 'numH + numW'),
                               _Mutant('square', 'numH * numW', 'numH * numH')]}),
        _CodeCell(f'{FILL_START}\n# Add the values.\nvalTotal = sum(lValues)\n{FILL_END}', 'fill-total',
                  {'name': 'Total', 'hint': 'add them', 'check': 'check-total', 'setup': ['data'],
                   'mutants': [_Mutant('one more', 'sum(lValues)', 'sum(lValues) + 1'),
                               _Mutant('the first', 'sum(lValues)', 'lValues[0]')]}),
        _CodeCell("assert valTotal == 6.0, f'expected 6.0, got {valTotal}'", 'check-total'),
    ]


@pytest.fixture(scope='module')
def lesson(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with one solution notebook and its generated exercise version."""
    repoRoot = tmp_path_factory.mktemp('repo')
    shutil.copy(REPO_ROOT / 'pyproject.toml', repoRoot / 'pyproject.toml')
    (repoRoot / 'notebooks').mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=_SolutionCells()), repoRoot / 'notebooks' / '01_Tiny.ipynb')
    assert exercises.main(['--root', str(repoRoot)]) == 0
    return repoRoot / 'notebooks'


def _StudentNotebook(lessonDir: Path, dAnswers: dict[str, str], folder: Path) -> Path:
    """The exercise version with the blank of each named exercise's cell replaced by an answer."""
    oNotebook = nbformat.read(lessonDir / 'exercises' / '01_Tiny.ipynb', as_version=4)
    for oCell in oNotebook.cells:
        name = oCell.metadata.get(EXERCISE_KEY, {}).get('name')
        if name in dAnswers:
            oCell.source = '\n'.join(dAnswers[name] if IsBlankLine(line) else line for line in oCell.source.split('\n'))
    folder.mkdir(exist_ok=True)
    nbformat.write(oNotebook, folder / '01_Tiny.ipynb')
    return folder / '01_Tiny.ipynb'


def test_the_solution_passes_every_exercise(lesson: Path, capsys: pytest.CaptureFixture) -> None:
    assert grade.main([str(lesson / '01_Tiny.ipynb')]) == grade.EXIT_PASSED
    lLines = capsys.readouterr().out.splitlines()
    assert lLines[0].startswith(f'{lesson / "01_Tiny.ipynb"} (')
    assert lLines[1:] == ['  MeanOf  passed', '  Area    passed', '  Total   passed',
                          '3 exercises: 3 passed, 0 failed, 0 not attempted, 0 with an error']


def test_the_exercise_version_attempts_none_and_the_json_says_so(lesson: Path, capsys: pytest.CaptureFixture) -> None:
    assert grade.main(['--json', str(lesson / 'exercises')]) == grade.EXIT_INCOMPLETE  #<! A folder of notebooks
    lRecords = json.loads(capsys.readouterr().out)
    assert [(d['exercise'], d['status']) for d in lRecords] == [(name, NOT_ATTEMPTED) for name in ('MeanOf', 'Area',
                                                                                                  'Total')]
    assert lRecords[0]['message'] == 'Fill in MeanOf: sum, then divide by the count'
    assert lRecords[0]['notebook'] == str(lesson / 'exercises' / '01_Tiny.ipynb')


def test_a_wrong_a_crashing_and_an_endless_answer(lesson: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    studentPath = _StudentNotebook(lesson, {'MeanOf': '    return sum(lX) / 2',
                                            'Area': f'valArea = numH / 0  {SINGLE_LINE_MARKER}',
                                            'Total': 'while True:\n    pass'}, tmp_path / 'student')
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('x = 1')]),
                   tmp_path / 'student' / 'README.ipynb')  #<! No exercise metadata: reported, not run
    assert grade.main(['--timeout', '5', str(studentPath.parent)]) == grade.EXIT_FAILED
    oCaptured = capsys.readouterr()
    assert oCaptured.out.splitlines()[1:] == [
        '  MeanOf  failed: Expected 2.0, got 3.0',
        '  Area    error: ZeroDivisionError: division by zero',
        '  Total   error: the fill cell ran past the timeout (5 s) and was interrupted',
        '3 exercises: 0 passed, 1 failed, 0 not attempted, 2 with an error']
    assert 'README.ipynb: no exercise metadata' in oCaptured.err


def test_nothing_to_grade_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('x = 1')]), tmp_path / 'plain.ipynb')
    assert grade.main([str(tmp_path / 'plain.ipynb')]) == grade.EXIT_NOTHING
    assert 'Error: no exercises to grade' in capsys.readouterr().err
    assert grade.main([str(tmp_path / 'missing.ipynb')]) == grade.EXIT_NOTHING
    assert 'not a notebook (.ipynb) or a folder' in capsys.readouterr().err
    assert GradeNotebook(tmp_path / 'plain.ipynb') == [], 'a notebook without exercises is not run'


def _RunCell(source: str = '', ename: str | None = None, evalue: str = '', ran: bool = True) -> nbformat.NotebookNode:
    oCell = nbformat.v4.new_code_cell(source)
    oCell.execution_count = 1 if ran else None
    if ename is not None:
        oCell.outputs = [nbformat.v4.new_output('error', ename=ename, evalue=evalue, traceback=[])]
    return oCell


@pytest.mark.parametrize(('dFill', 'dCheck', 'expected'), [
    ({}, {}, Outcome(PASSED)),
    ({}, {'ename': 'AssertionError', 'evalue': 'case 1: expected 1, got 2\nmore'},
     Outcome(FAILED, 'case 1: expected 1, got 2\nmore')),
    ({'ename': 'NotImplementedError', 'evalue': 'Fill in X: h'}, {'ename': 'NameError'},
     Outcome(NOT_ATTEMPTED, 'Fill in X: h')),
    ({}, {'ename': 'NotImplementedError', 'evalue': 'Fill in X: h'}, Outcome(NOT_ATTEMPTED, 'Fill in X: h')),
    ({}, {'ename': 'NotImplementedError', 'evalue': 'Fill in Y: h'},
     Outcome(ERROR, 'NotImplementedError: Fill in Y: h')),  #<! Another exercise's blank: this one's check needs it
    ({'ename': 'AssertionError', 'evalue': 'mine'}, {}, Outcome(ERROR, 'AssertionError: mine')),
    ({'ename': 'KeyboardInterrupt'}, {},
     Outcome(ERROR, 'the fill cell ran past the timeout (9 s) and was interrupted')),
    ({}, {'ran': False}, Outcome(ERROR, 'the check cell did not run (DeadKernelError: Kernel died)')),
])
def test_the_outcome_is_read_from_the_fill_and_check_cells(dFill: dict, dCheck: dict, expected: Outcome) -> None:
    assert ClassifyExercise('X', _RunCell(**dFill), _RunCell(**dCheck), timeout=9,
                            stopReason='DeadKernelError: Kernel died') == expected


def test_a_cell_that_checks_itself_fails_on_its_assertion() -> None:
    oCell = _RunCell(ename='AssertionError', evalue='expected 12, got 7')
    assert ClassifyExercise('X', oCell, oCell) == Outcome(FAILED, 'expected 12, got 7')
    assert Outcome(FAILED, '').text == 'failed: (no message)'


def test_the_table_cuts_long_messages_to_one_line() -> None:
    oResult = Result('nb.ipynb', 'LongName', FAILED, 'expected ' + 'x' * 200 + '\nsecond line', 12.0)
    lLines = FormatTable([oResult, Result('nb.ipynb', 'B', PASSED, '', 12.0)]).splitlines()
    assert lLines[0] == 'nb.ipynb (12 s)'
    assert lLines[1].startswith('  LongName  failed: expected xxx') and lLines[1].endswith('...')
    assert len(lLines[1]) == 2 + len('LongName') + 2 + grade._MAX_MESSAGE
    assert lLines[2] == '  B         passed'
