"""Mutation test of the exercises: every check passes the solution and catches each wrong answer it lists.

An exercise's metadata (tools/exercises.py) lists ``mutants``: plausible wrong answers, each a list of
``[old, new]`` text substitutions applied, in order, to the solution's fill cell. Each ``old`` must occur exactly
once in the (partly substituted) source, inside a fill block (between the markers, or on a ``#<Fill This>`` line
before its marker), and a mutant must change the source. An exercise needs at least ``MIN_MUTANTS`` of them.

The test of one exercise runs in ONE fresh kernel (nbclient, in the notebook's folder, ``COURSE_QUICK=1``; that is
``RunMutationTest``, and ``RunNotebookMutationTests`` runs all of a notebook's exercises in one kernel, one after the
other, as the tests and this command do), errors allowed, the runs one after the other::

    setup cells, solution fill cell, check cell,
    reset, setup cells, mutant 1 fill cell, check cell,
    reset, setup cells, mutant 2 fill cell, check cell, ...

The reset empties the namespace between runs (like ``%reset -f``; imported modules stay loaded, so a second
``import`` is free): a mutant never inherits what the solution defined. Then:

* the solution's fill and check cells raise nothing;
* each mutant's fill cell runs without an error, and its check cell raises an ``AssertionError`` whose message
  contains "expected" and "got" (any case): the student is told what was expected and what their code gave. Any
  other exception (a ``NameError``, ``TypeError``... in the fill or the check cell) does NOT count as caught: a
  mutant is a plausible wrong answer that runs, and the check is what must catch it. When the check is in the fill
  cell itself, the ``AssertionError`` of that cell is the check's.

    python -m tools.mutants                                   # every solution notebook with exercise metadata
    python -m tools.mutants notebooks/03_TrainingLoop.ipynb   # one notebook
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from tools.exercises import (EXERCISE_KEY, SINGLE_LINE_MARKER, ExerciseCells, ExerciseCodeCell, ExerciseProblems,
                             FillBlocks, MarkerError)
from tools.grade import DEFAULT_TIMEOUT, FAILED, PASSED, CellErrorOf, ClassifyExercise, ExecuteNotebook
from tools.notebook_io import NOTEBOOKS_DIR, LessonNotebooks, ReadNotebook

MIN_MUTANTS = 2
# Empties the namespace but IPython's own names; %reset -f does too but also collects garbage: 1.6 s with torch loaded
RESET_SOURCE = """# The next run starts clean
def _EmptyNamespace(dNamespace: dict, setHidden: set) -> None:
    import re
    oIPythonName = re.compile(r'_(_{0,2}|i{1,3}|i?\\d+|[odi]h|exit_code)')  #<! Its output and input history
    for name in [n for n in dNamespace if n not in setHidden and not oIPythonName.fullmatch(n)]:
        del dNamespace[name]


_EmptyNamespace(get_ipython().user_ns, get_ipython().user_ns_hidden)"""
SOLUTION_LABEL = 'the solution'
_RUN_PREFIX = re.compile(r'^(e\d+-)?run\d+-')  #<! What the mutation notebook puts before a lesson's cell id
_EXPECTED_GOT = (re.compile(r'expected', re.I), re.compile(r'\bgot\b', re.I))


class MutantError(ValueError):
    """A mutant that cannot be applied as written (an ``old`` missing, repeated, outside a fill block...)."""


@dataclass(frozen=True)
class Run:
    """One run of a mutation notebook: its label and the indices of its cells there."""

    label: str
    lSetupIdx: tuple[int, ...]
    fillIdx: int
    checkIdx: int


@dataclass
class MutationReport:
    """What the mutation test of one exercise found: ``lProblems`` is empty when it passed."""

    notebook: str
    exercise: str
    lProblems: list[str] = field(default_factory=list)
    numRuns: int = 0
    seconds: float = 0.0


def FillSpans(source: str, where: str) -> list[tuple[int, int]]:
    """The character ranges ``[start, end)`` of the source that fill blocks hold: the lines between the markers, or
    the part of a ``#<Fill This>`` line before its marker."""
    lLines = source.split('\n')
    lStarts = [0]
    for line in lLines:
        lStarts.append(lStarts[-1] + len(line) + 1)
    lSpans = []
    for oBlock in FillBlocks(source, where):
        if oBlock.isSingleLine:
            line = lLines[oBlock.startIdx]
            lSpans.append((lStarts[oBlock.startIdx], lStarts[oBlock.startIdx] + line.rindex(SINGLE_LINE_MARKER)))
        else:
            lSpans.append((lStarts[oBlock.startIdx + 1], lStarts[oBlock.endIdx]))
    return lSpans


def ApplyMutant(source: str, dMutant: dict, where: str) -> str:
    """The fill cell's source with the mutant's substitutions applied, in order (see the module's docstring)."""
    whereMutant = f'{where}, mutant {dMutant.get("name")!r}'
    newSource = source
    for pairIdx, (old, new) in enumerate(dMutant['replace']):
        wherePair = f'{whereMutant}, replace {pairIdx} ({old!r} -> {new!r})'
        numFound = newSource.count(old)
        if numFound != 1:
            raise MutantError(f'{wherePair}: the old text occurs {numFound} times in the fill cell, expected once '
                              '(quote more of the line to make it unique)')
        if old == new:
            raise MutantError(f'{wherePair}: old and new are the same text')
        startPos = newSource.index(old)
        try:
            lSpans = FillSpans(newSource, where)
        except MarkerError as oErr:
            raise MutantError(f'{wherePair}: the markers before it are broken: {oErr}') from oErr
        if not any(spanStart <= startPos and startPos + len(old) <= spanEnd for spanStart, spanEnd in lSpans):
            raise MutantError(f'{wherePair}: the old text is not inside a fill block (only the code students write '
                              'may be mutated; a marker line may not be part of it)')
        newSource = newSource.replace(old, new, 1)
    if newSource == source:
        raise MutantError(f'{whereMutant}: its substitutions leave the source unchanged')
    return newSource


def StaticProblems(oNotebook: NotebookNode, where: str) -> list[str]:
    """The problems found without a kernel: malformed metadata, too few mutants, a mutant that cannot apply."""
    lProblems = ExerciseProblems(oNotebook, where)
    if lProblems:
        return lProblems  #<! Mutants of a malformed exercise are not worth reading yet
    for cellIdx, dExercise in ExerciseCells(oNotebook):
        whereEx = f'{where}, exercise {dExercise["name"]!r}'
        lMutants = dExercise.get('mutants', [])
        if len(lMutants) < MIN_MUTANTS:
            lProblems.append(f'{whereEx}: {len(lMutants)} mutants, expected at least {MIN_MUTANTS} plausible wrong '
                             'answers that its check must catch')
        for dMutant in lMutants:
            try:
                ApplyMutant(oNotebook.cells[cellIdx].source, dMutant, whereEx)
            except MutantError as oErr:
                lProblems.append(str(oErr))
    return lProblems


def _RunCell(oCell: NotebookNode, source: str | None = None, tag: str = '') -> NotebookNode:
    return ExerciseCodeCell(oCell.source if source is None else source, f'{tag}-{oCell.get("id", "cell")}'[:64])


def MutationNotebook(oNotebook: NotebookNode, cellIdx: int) -> tuple[NotebookNode, list[Run]]:
    """The notebook that tests the exercise of cell ``cellIdx``: the solution's run, then each mutant's (see the
    module's docstring), and where each run's cells are in it."""
    dExercise = oNotebook.cells[cellIdx].metadata[EXERCISE_KEY]
    dIdx = {oCell.get('id'): ii for ii, oCell in enumerate(oNotebook.cells)}
    lSetup = [oNotebook.cells[dIdx[setupId]] for setupId in dExercise.get('setup', [])]
    oFill = oNotebook.cells[cellIdx]
    oCheck = oNotebook.cells[dIdx[dExercise['check']]]
    lVariants = [(SOLUTION_LABEL, oFill.source)]
    lVariants += [(f'mutant {dMutant["name"]!r}', ApplyMutant(oFill.source, dMutant, f'exercise {dExercise["name"]!r}'))
                  for dMutant in dExercise.get('mutants', [])]
    lCells: list[NotebookNode] = []
    lRuns: list[Run] = []
    for runIdx, (label, fillSource) in enumerate(lVariants):
        tag = f'run{runIdx}'
        if runIdx > 0:
            oReset = nbformat.v4.new_code_cell(RESET_SOURCE)
            oReset['id'] = f'{tag}-reset'
            lCells.append(oReset)
        lSetupIdx = []
        for oSetup in lSetup:
            lSetupIdx.append(len(lCells))
            lCells.append(_RunCell(oSetup, tag=tag))
        fillIdx = len(lCells)
        lCells.append(_RunCell(oFill, fillSource, tag=tag))
        checkIdx = fillIdx
        if oCheck is not oFill:
            checkIdx = len(lCells)
            lCells.append(_RunCell(oCheck, tag=f'{tag}-check'))
        lRuns.append(Run(label, tuple(lSetupIdx), fillIdx, checkIdx))
    oTest = nbformat.v4.new_notebook(cells=lCells, metadata=copy.deepcopy(oNotebook.metadata))
    return oTest, lRuns


def _HasExpectedAndGot(message: str) -> bool:
    return all(oPattern.search(message) for oPattern in _EXPECTED_GOT)


def RunProblems(oTest: NotebookNode, lRuns: list[Run], name: str, where: str, timeout: int,
                stopReason: str | None = None) -> list[str]:
    """Read a run mutation notebook: what the solution's run and the mutants' runs did wrong."""
    lProblems = []
    for oRun in lRuns:
        whereRun = f'{where}, {oRun.label}'
        lSetupErrors = [(ii, oError) for ii in oRun.lSetupIdx if (oError := CellErrorOf(oTest.cells[ii])) is not None]
        if lSetupErrors:
            ii, oError = lSetupErrors[0]
            setupId = _RUN_PREFIX.sub('', oTest.cells[ii].id)  #<! The lesson's own cell id
            lProblems.append(f'{whereRun}: the setup cell {setupId!r} raised '
                             f'{oError.ename}: {oError.evalue} (list in "setup" every earlier cell the exercise needs)')
            continue
        oFillCell, oCheckCell = oTest.cells[oRun.fillIdx], oTest.cells[oRun.checkIdx]
        oOutcome = ClassifyExercise(name, oFillCell, oCheckCell, timeout, stopReason)
        if oRun.label == SOLUTION_LABEL:
            if oOutcome.status != PASSED:
                lProblems.append(f'{whereRun}: expected its check to pass, got {oOutcome.text}')
            continue
        if oOutcome.status == PASSED:
            lProblems.append(f'{whereRun}: survived: the check passed this wrong answer (make the check catch it, '
                             'or drop a mutant that changes nothing that matters)')
        elif oOutcome.status != FAILED:  #<! An error in the fill cell, or a crash of the check other than an assert
            lProblems.append(f'{whereRun}: expected an AssertionError from the check, got {oOutcome.text} (a mutant '
                             'must run; the check must catch it by an assertion)')
        elif not _HasExpectedAndGot(oOutcome.message):
            lProblems.append(f'{whereRun}: the check\'s message must say what was expected and what was got '
                             f'("expected ..., got ..."), got {oOutcome.message!r}')
    return lProblems


def RunMutationTest(notebookPath: Path, exerciseName: str, timeout: int = DEFAULT_TIMEOUT) -> MutationReport:
    """The whole mutation test of one exercise of a solution notebook (static checks, then one kernel)."""
    oNotebook = ReadNotebook(notebookPath)
    oReport = MutationReport(notebookPath.name, exerciseName)
    where = f'{notebookPath.name}, exercise {exerciseName!r}'
    dCells = {str(dExercise.get('name')): cellIdx for cellIdx, dExercise in ExerciseCells(oNotebook)
              if isinstance(dExercise, dict)}
    if exerciseName not in dCells:
        oReport.lProblems.append(f'{where}: no cell carries this exercise\'s metadata')
        return oReport
    lStatic = [problem for problem in StaticProblems(oNotebook, notebookPath.name)
               if f'exercise {exerciseName!r}' in problem or 'exercise ' not in problem]
    if lStatic:
        oReport.lProblems.extend(lStatic)
        return oReport
    oTest, lRuns = MutationNotebook(oNotebook, dCells[exerciseName])
    startTime = time.perf_counter()
    stopReason = ExecuteNotebook(oTest, notebookPath.parent.resolve(), timeout)
    oReport.seconds = time.perf_counter() - startTime
    oReport.numRuns = len(lRuns)
    oReport.lProblems.extend(RunProblems(oTest, lRuns, exerciseName, where, timeout, stopReason))
    return oReport


def _ShiftedRun(oRun: Run, offset: int) -> Run:
    return Run(oRun.label, tuple(ii + offset for ii in oRun.lSetupIdx), oRun.fillIdx + offset, oRun.checkIdx + offset)


def RunNotebookMutationTests(notebookPath: Path, timeout: int = DEFAULT_TIMEOUT) -> dict[str, MutationReport]:
    """The mutation tests of every exercise of a notebook in ONE kernel: the exercises' runs one after the other,
    the namespace emptied before each run (as within one exercise). A kernel start and the first ``import torch``
    cost about 15 s on a 2-core CPU, which one kernel per notebook pays once instead of once per exercise.

    Returns a report per exercise name, as ``RunMutationTest`` would give it (the kernel's time split evenly).
    """
    oNotebook = ReadNotebook(notebookPath)
    lStatic = StaticProblems(oNotebook, notebookPath.name)
    dReports: dict[str, MutationReport] = {}
    lCells: list[NotebookNode] = []
    lPlans: list[tuple[str, list[Run]]] = []
    for cellIdx, dExercise in ExerciseCells(oNotebook):
        if not isinstance(dExercise, dict):
            continue
        name = str(dExercise.get('name'))
        oReport = dReports[name] = MutationReport(notebookPath.name, name)
        oReport.lProblems.extend(problem for problem in lStatic
                                 if f'exercise {name!r}' in problem or 'exercise ' not in problem)
        if oReport.lProblems:
            continue
        oTest, lRuns = MutationNotebook(oNotebook, cellIdx)
        if lCells:
            oReset = nbformat.v4.new_code_cell(RESET_SOURCE)
            oReset['id'] = f'ex{len(lPlans)}-reset'
            lCells.append(oReset)
        offset = len(lCells)
        for oCell in oTest.cells:  #<! Every exercise's runs start at run0: make the ids unique in the shared notebook
            oCell['id'] = f'e{len(lPlans)}-{oCell.id}'[:64]
        lCells.extend(oTest.cells)
        lPlans.append((name, [_ShiftedRun(oRun, offset) for oRun in lRuns]))
    if not lPlans:
        return dReports
    oTest = nbformat.v4.new_notebook(cells=lCells, metadata=copy.deepcopy(oNotebook.metadata))
    startTime = time.perf_counter()
    stopReason = ExecuteNotebook(oTest, notebookPath.parent.resolve(), timeout)
    secondsEach = (time.perf_counter() - startTime) / len(lPlans)
    for name, lRuns in lPlans:
        oReport = dReports[name]
        oReport.numRuns, oReport.seconds = len(lRuns), secondsEach
        oReport.lProblems.extend(RunProblems(oTest, lRuns, name, f'{notebookPath.name}, exercise {name!r}', timeout,
                                             stopReason))
    return dReports


def NotebookExercises(lNotebooks: list[Path]) -> list[tuple[Path, str]]:
    """``(notebook, exercise name)`` of every exercise of the notebooks, in order."""
    return [(notebookPath, str(dExercise.get('name'))) for notebookPath in lNotebooks
            for _, dExercise in ExerciseCells(ReadNotebook(notebookPath)) if isinstance(dExercise, dict)]


def main(lArgs: list[str] | None = None) -> int:
    oParser = argparse.ArgumentParser(prog='python -m tools.mutants', description=__doc__.splitlines()[0])
    oParser.add_argument('notebooks', nargs='*', type=Path, help='solution notebooks (default: every lesson)')
    oParser.add_argument('--timeout', type=int, default=DEFAULT_TIMEOUT, help='seconds per cell (default: %(default)s)')
    oArgs = oParser.parse_args(lArgs)
    lExercises = NotebookExercises(oArgs.notebooks or LessonNotebooks(NOTEBOOKS_DIR))
    if not lExercises:
        print('No exercise metadata in these notebooks: nothing to test.')
        return 0
    numFailed = 0
    dReports: dict[Path, dict[str, MutationReport]] = {}
    for notebookPath, exerciseName in lExercises:
        if notebookPath not in dReports:
            dReports[notebookPath] = RunNotebookMutationTests(notebookPath, oArgs.timeout)
        oReport = dReports[notebookPath][exerciseName]
        verdict = 'ok' if not oReport.lProblems else 'FAILED'
        print(f'{oReport.notebook} {exerciseName}: {verdict} ({oReport.numRuns} runs, {oReport.seconds:.1f} s)')
        for problem in oReport.lProblems:
            print(f'  {problem}')
        numFailed += bool(oReport.lProblems)
    return 1 if numFailed else 0


if __name__ == '__main__':
    sys.exit(main())
