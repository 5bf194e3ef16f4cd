"""The mutation test: each exercise's check passes its solution and catches every listed wrong answer (mutant) by an
AssertionError that says what was expected and what was got. Run on the lessons (each exercise a test), and proven on
small synthetic notebooks."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import nbformat
import pytest

from tools.exercises import FILL_END, FILL_START, SINGLE_LINE_MARKER
from tools.exercises import ExerciseCodeCell as _CodeCell
from tools.grade import CellError
from tools.mutants import (RESET_SOURCE, SOLUTION_LABEL, ApplyMutant, MutantError, MutationNotebook,
                           NotebookExercises, RunMutationTest, RunNotebookMutationTests, RunProblems, StaticProblems)
from tools.notebook_io import REPO_ROOT, LessonNotebooks

LESSON_NOTEBOOKS = LessonNotebooks(REPO_ROOT / 'notebooks')
LESSON_EXERCISES = NotebookExercises(LESSON_NOTEBOOKS)


@functools.cache
def _NotebookReports(solutionPath: Path) -> dict:
    """All exercises of a lesson run in one kernel, once: the per-exercise tests read their report from here."""
    return RunNotebookMutationTests(solutionPath)


@pytest.mark.parametrize('solutionPath', LESSON_NOTEBOOKS, ids=lambda p: p.name)
def test_the_lessons_exercises_have_mutants_that_apply(solutionPath: Path) -> None:
    """At least 2 mutants per exercise, each replace found once inside a fill block (no kernel needed)."""
    lProblems = StaticProblems(nbformat.read(solutionPath, as_version=4), solutionPath.name)
    assert not lProblems, '\n'.join(lProblems)


# One xdist group per lesson: its exercises share one kernel run (_NotebookReports), on one worker
@pytest.mark.parametrize(('solutionPath', 'exerciseName'), [
    pytest.param(path, name, id=f'{path.name}::{name}', marks=pytest.mark.xdist_group(f'mutants-{path.stem}'))
    for path, name in LESSON_EXERCISES])
def test_each_lesson_check_passes_the_solution_and_catches_every_mutant(solutionPath: Path, exerciseName: str) -> None:
    oReport = _NotebookReports(solutionPath)[exerciseName]
    assert not oReport.lProblems, '\n'.join(oReport.lProblems)


# ------------------------------------------------------------------------------------------------
# Synthetic notebooks
# ------------------------------------------------------------------------------------------------
def _Mutant(name: str, *lPairs: tuple[str, str]) -> dict:
    return {'name': name, 'replace': [list(tuPair) for tuPair in lPairs]}


def _TotalCells(*lMutants: dict) -> list[nbformat.NotebookNode]:
    """A data cell and the fill cell of the exercise 'Total' (the sum of ``lValues``), checked by 'check-total'."""
    return [_CodeCell('lValues = [3.0, 1.0, 2.0]', 'data'),
            _CodeCell(f'{FILL_START}\n# The total.\nvalTotal = sum(lValues)\n{FILL_END}', 'fill-total',
                      {'name': 'Total', 'hint': 'add them', 'check': 'check-total', 'setup': ['data'],
                       'mutants': list(lMutants)})]


def _WriteNotebook(folder: Path, name: str, lCells: list) -> Path:
    notebookPath = folder / name
    nbformat.write(nbformat.v4.new_notebook(cells=lCells), notebookPath)
    return notebookPath


def _GoodNotebook(folder: Path) -> Path:
    """Two good exercises: a function checked by the next cell (with a setup cell), and a single line that checks
    itself. The setup cell asserts quick mode and the notebook's folder as the working directory."""
    return _WriteNotebook(folder, '01_Good.ipynb', [
        nbformat.v4.new_markdown_cell('# Good'),
        _CodeCell("import math, os\nassert os.environ.get('COURSE_QUICK') == '1' and os.path.isfile('01_Good.ipynb')\n"
                  "assert 'valGot' not in dir() and '_private' not in dir(), 'expected a clean namespace, got more'\n"
                  'lValues = [3.0, 1.0, 2.0]', 'data'),
        _CodeCell("raise RuntimeError('not a setup cell: the mutation test must not run it')", 'slow'),
        _CodeCell(f'def MeanOf(lX):\n    {FILL_START}\n    # The mean.\n    valSum = sum(lX)\n'
                  f'    return valSum / len(lX)\n    {FILL_END}', 'fill-mean',
                  {'name': 'MeanOf', 'hint': 'sum, then divide', 'check': 'check-mean', 'setup': ['data'],
                   'mutants': [_Mutant('divide by two', ('/ len(lX)', '/ 2')),
                               _Mutant('the maximum', ('sum(lX)', 'max(lX)'), ('/ len(lX)', '/ 1'))]}),
        _CodeCell('valGot = _private = MeanOf(lValues)\n'
                  "assert math.isclose(valGot, 2.0), f'Expected 2.0, got {valGot}'", 'check-mean'),
        _CodeCell(f'numH, numW = 3, 4\nvalArea = numH * numW  {SINGLE_LINE_MARKER}\n'
                  "assert valArea == 12, f'3 x 4: expected 12, got {valArea}'", 'fill-area',
                  {'name': 'Area', 'hint': 'height times width', 'check': 'fill-area',
                   'mutants': [_Mutant('sum', ('numH * numW', 'numH + numW')),
                               _Mutant('square', ('numH * numW', 'numH * numH'))]}),
    ])


def test_good_exercises_pass_each_in_one_kernel(tmp_path: Path) -> None:
    notebookPath = _GoodNotebook(tmp_path)
    assert StaticProblems(nbformat.read(notebookPath, as_version=4), notebookPath.name) == []
    assert NotebookExercises([notebookPath]) == [(notebookPath, 'MeanOf'), (notebookPath, 'Area')]
    for exerciseName in ['MeanOf', 'Area']:
        startTime = time.perf_counter()
        oReport = RunMutationTest(notebookPath, exerciseName)
        print(f'{exerciseName}: {oReport.numRuns} runs, {oReport.seconds:.1f} s in the kernel, '
              f'{time.perf_counter() - startTime:.1f} s in all')
        assert oReport.lProblems == []
        assert oReport.numRuns == 3  #<! The solution and its 2 mutants


def test_one_kernel_per_notebook_gives_the_same_reports(tmp_path: Path) -> None:
    notebookPath = _GoodNotebook(tmp_path)
    dReports = RunNotebookMutationTests(notebookPath)
    assert sorted(dReports) == ['Area', 'MeanOf']
    assert all(oReport.lProblems == [] and oReport.numRuns == 3 for oReport in dReports.values())


def test_one_kernel_per_notebook_still_reports_each_weak_check(tmp_path: Path) -> None:
    # A surviving mutant in the first exercise must not hide, or leak into, the second one
    notebookPath = _WriteNotebook(tmp_path, '03_Mixed.ipynb', [
        *_TotalCells(_Mutant('off by one', ('sum(lValues)', 'sum(lValues) + 1')),
                     _Mutant('sorted first', ('sum(lValues)', 'sum(sorted(lValues))'))),
        _CodeCell("assert valTotal == 6.0, f'expected 6.0, got {valTotal}'", 'check-total'),
        _CodeCell(f'{FILL_START}\n# The largest.\nvalMax = max(lValues)\n{FILL_END}', 'fill-max',
                  {'name': 'Largest', 'hint': 'the maximum', 'check': 'check-max', 'setup': ['data'],
                   'mutants': [_Mutant('smallest', ('max(lValues)', 'min(lValues)')),
                               _Mutant('first', ('max(lValues)', 'lValues[0]'))]}),
        _CodeCell("assert 'valTotal' not in dir(), 'expected a clean namespace, got valTotal'\n"
                  "assert valMax == 3.0, f'expected 3.0, got {valMax}'", 'check-max'),
    ])
    dReports = RunNotebookMutationTests(notebookPath)
    assert len(dReports['Total'].lProblems) == 1 and 'sorted first' in dReports['Total'].lProblems[0]
    assert 'survived' in dReports['Total'].lProblems[0]
    assert len(dReports['Largest'].lProblems) == 1 and "mutant 'first'" in dReports['Largest'].lProblems[0]


def test_the_mutation_notebook_runs_setup_fill_check_and_resets_between_runs(tmp_path: Path) -> None:
    oNotebook = nbformat.read(_GoodNotebook(tmp_path), as_version=4)
    oTest, lRuns = MutationNotebook(oNotebook, 3)
    lSources = [oCell.source for oCell in oTest.cells]
    dSource = {oCell.id: oCell.source for oCell in oNotebook.cells}
    assert lSources[:3] == [dSource['data'], dSource['fill-mean'], dSource['check-mean']]
    assert lSources[3:5] == [RESET_SOURCE, dSource['data']]
    assert lSources[5] == dSource['fill-mean'].replace('/ len(lX)', '/ 2') and lSources[6] == dSource['check-mean']
    assert [(oRun.label, oRun.lSetupIdx, oRun.fillIdx, oRun.checkIdx) for oRun in lRuns] == [
        (SOLUTION_LABEL, (0,), 1, 2), ("mutant 'divide by two'", (4,), 5, 6), ("mutant 'the maximum'", (8,), 9, 10)]
    assert 'slow' not in {oCell.id.split('-', 1)[1] for oCell in oTest.cells if '-' in oCell.id}
    _, lRunsSelf = MutationNotebook(oNotebook, 5)
    assert all(oRun.fillIdx == oRun.checkIdx for oRun in lRunsSelf), 'a cell that checks itself runs once'


def test_weak_checks_and_bad_mutants_are_reported_by_name(tmp_path: Path) -> None:
    """One kernel, five mutants: one caught as it should be, four that each break one rule."""
    notebookPath = _WriteNotebook(tmp_path, '02_Bad.ipynb', [
        *_TotalCells(_Mutant('off by one', ('sum(lValues)', 'sum(lValues) + 1')),
                     _Mutant('sorted first', ('sum(lValues)', 'sum(sorted(lValues))')),
                     _Mutant('an integer', ('sum(lValues)', 'int(sum(lValues))')),
                     _Mutant('crashes in the fill', ('sum(lValues)', 'sum(lValues, None)')),
                     _Mutant('a string', ('sum(lValues)', 'str(sum(lValues))'))),
        _CodeCell("valRounded = round(valTotal, 3)\nassert isinstance(valTotal, float), 'valTotal is no float'\n"
                  "assert valRounded == 6.0, f'expected 6.0, got {valRounded}'", 'check-total'),
    ])
    oReport = RunMutationTest(notebookPath, 'Total')
    assert oReport.numRuns == 6
    where = "02_Bad.ipynb, exercise 'Total'"
    assert oReport.lProblems == [
        f"{where}, mutant 'sorted first': survived: the check passed this wrong answer (make the check catch it, or "
        'drop a mutant that changes nothing that matters)',
        f"{where}, mutant 'an integer': the check's message must say what was expected and what was got "
        "(\"expected ..., got ...\"), got 'valTotal is no float'",
        f"{where}, mutant 'crashes in the fill': expected an AssertionError from the check, got error: TypeError: "
        "unsupported operand type(s) for +: 'NoneType' and 'float' (a mutant must run; the check must catch it by an "
        'assertion)',
        f"{where}, mutant 'a string': expected an AssertionError from the check, got error: TypeError: type str "
        "doesn't define __round__ method (a mutant must run; the check must catch it by an assertion)"]


def test_a_solution_that_fails_its_check_is_reported(tmp_path: Path) -> None:
    notebookPath = _WriteNotebook(tmp_path, '03_Wrong.ipynb', [
        _CodeCell(f'{FILL_START}\nvalTotal = 1 + 2\n{FILL_END}', 'fill',
                  {'name': 'Total', 'hint': 'add', 'check': 'check',
                   'mutants': [_Mutant('minus', ('1 + 2', '1 - 2')), _Mutant('times', ('1 + 2', '1 * 2'))]}),
        _CodeCell("assert valTotal == 4, f'expected 4, got {valTotal}'", 'check'),
    ])
    lProblems = RunMutationTest(notebookPath, 'Total').lProblems
    assert lProblems[0] == "03_Wrong.ipynb, exercise 'Total', the solution: expected its check to pass, got failed: " \
                           'expected 4, got 3'


def _Executed(oTest: nbformat.NotebookNode, dErrors: dict[int, CellError]) -> nbformat.NotebookNode:
    """The mutation notebook as if run: every cell ran, the given cells raised the given errors."""
    for cellIdx, oCell in enumerate(oTest.cells):
        oCell.execution_count = cellIdx + 1
        if cellIdx in dErrors:
            oCell.outputs = [nbformat.v4.new_output('error', ename=dErrors[cellIdx].ename,
                                                    evalue=dErrors[cellIdx].evalue, traceback=[])]
    return oTest


def test_the_outcome_of_each_run_is_read_from_its_cells(tmp_path: Path) -> None:
    """Without a kernel: a setup cell that raised, an AssertionError in the fill cell (not the check's), a timeout."""
    oNotebook = nbformat.read(_GoodNotebook(tmp_path), as_version=4)
    oTest, lRuns = MutationNotebook(oNotebook, 3)
    where = "01_Good.ipynb, exercise 'MeanOf'"
    assert RunProblems(_Executed(oTest, {
        2: CellError('NameError', "name 'lValues' is not defined"),
        5: CellError('AssertionError', 'expected a list, got a tuple'),
        10: CellError('KeyboardInterrupt', '')}), lRuns, 'MeanOf', where, timeout=7) == [
        f"{where}, the solution: expected its check to pass, got error: NameError: name 'lValues' is not defined",
        f"{where}, mutant 'divide by two': expected an AssertionError from the check, got error: AssertionError: "
        'expected a list, got a tuple (a mutant must run; the check must catch it by an assertion)',
        f"{where}, mutant 'the maximum': expected an AssertionError from the check, got error: the check cell ran past "
        'the timeout (7 s) and was interrupted (a mutant must run; the check must catch it by an assertion)']
    oTest, lRuns = MutationNotebook(oNotebook, 3)
    assert RunProblems(_Executed(oTest, {0: CellError('ModuleNotFoundError', "No module named 'nope'")}), lRuns,
                       'MeanOf', where, timeout=7)[0] == \
        f"{where}, the solution: the setup cell 'data' raised ModuleNotFoundError: No module named 'nope' (list in " \
        '"setup" every earlier cell the exercise needs)'


def test_mutants_that_cannot_apply_are_refused_without_a_kernel() -> None:
    source = f'x = 1\n{FILL_START}\n# Add.\ny = x + x\nz = x + 2\n{FILL_END}\nw = x + x'
    dExercise = {'name': 'Add', 'hint': 'add', 'check': 'fill'}
    lMutants = [
        _Mutant('ok, in two steps', ('y = x + x', 'y = x - x'), ('x - x', 'x * 3')),
        _Mutant('absent', ('x * 7', 'x')),
        _Mutant('twice', ('x + x', 'x - x')),
        _Mutant('outside', ('x = 1', 'x = 2')),
        _Mutant('in a comment only: fine', ('# Add.', '# Subtract.')),
        _Mutant('over the end marker', (f'2\n{FILL_END}', f'3\n{FILL_END}')),
        _Mutant('same text', ('z = x + 2', 'z = x + 2')),
        _Mutant('back and forth', ('z = x + 2', 'z = x + 3'), ('z = x + 3', 'z = x + 2')),
    ]
    oNotebook = nbformat.v4.new_notebook(cells=[
        _CodeCell(source, 'fill', dExercise | {'mutants': lMutants}),
        _CodeCell(f'valOut = 3 * 4  {SINGLE_LINE_MARKER}', 'line', {'name': 'Line', 'hint': 'h', 'check': 'line',
                                                                   'mutants': [_Mutant('one', ('3 * 4', '3 + 4'))]}),
    ])
    where = "nb, exercise 'Add', mutant"
    assert StaticProblems(oNotebook, 'nb') == [
        f"{where} 'absent', replace 0 ('x * 7' -> 'x'): the old text occurs 0 times in the fill cell, expected once "
        '(quote more of the line to make it unique)',
        f"{where} 'twice', replace 0 ('x + x' -> 'x - x'): the old text occurs 2 times in the fill cell, expected "
        'once (quote more of the line to make it unique)',
        f"{where} 'outside', replace 0 ('x = 1' -> 'x = 2'): the old text is not inside a fill block (only the code "
        'students write may be mutated; a marker line may not be part of it)',
        f"{where} 'over the end marker', replace 0 ({f'2{chr(10)}{FILL_END}'!r} -> {f'3{chr(10)}{FILL_END}'!r}): the "
        'old text is not inside a fill block (only the code students write may be mutated; a marker line may not be '
        'part of it)',
        f"{where} 'same text', replace 0 ('z = x + 2' -> 'z = x + 2'): old and new are the same text",
        f"{where} 'back and forth': its substitutions leave the source unchanged",
        "nb, exercise 'Line': 1 mutants, expected at least 2 plausible wrong answers that its check must catch"]
    assert ApplyMutant(source, lMutants[0], 'nb') == source.replace('y = x + x', 'y = x * 3')
    assert ApplyMutant(oNotebook.cells[1].source, _Mutant('one', ('3 * 4', '3 + 4')), 'nb').startswith('valOut = 3 + 4')
    with pytest.raises(MutantError, match='not inside a fill block'):
        ApplyMutant(oNotebook.cells[1].source, _Mutant('the marker', ('Fill This', 'Fill That')), 'nb')


def test_malformed_metadata_stops_the_mutation_test_before_a_kernel(tmp_path: Path) -> None:
    notebookPath = _WriteNotebook(tmp_path, '04_Malformed.ipynb', [
        _CodeCell(f'{FILL_START}\nx = 1\n{FILL_END}', 'fill', {'name': 'X', 'hint': 'h', 'check': 'nowhere',
                                                               'mutants': []})])
    oReport = RunMutationTest(notebookPath, 'X')
    assert oReport.numRuns == 0
    assert oReport.lProblems == ["04_Malformed.ipynb, cell 0 (id 'fill'), exercise 'X': \"check\" must be the id of a "
                                 "code cell of this notebook, got 'nowhere'"]
