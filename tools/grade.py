"""Grade exercise notebooks: run each one in quick mode and report every exercise it holds.

    python -m tools.grade notebooks/exercises/03_TrainingLoop.ipynb   # one notebook
    python -m tools.grade submissions/                              # every notebook under a folder
    python -m tools.grade --json submissions/ > grades.json         # one record per exercise, for many submissions

A notebook runs top to bottom in a fresh kernel (nbclient), in its own folder, with ``COURSE_QUICK=1``; a cell's
error does not stop the run (``allow_errors``), and a cell that runs past ``--timeout`` seconds is interrupted. The
exercises are the cells that carry ``exercise`` metadata (see tools/exercises.py: its ``name`` and its ``check``
cell). Each gets one result:

* ``passed``: its fill cell and its check cell ran without an error;
* ``not attempted``: the fill or check cell raised the blank's ``NotImplementedError('Fill in <Name>: ...')``;
* ``failed: <message>``: the check raised an ``AssertionError`` (the first line of its message is shown);
* ``error: <Exception: message>``: the fill or check cell crashed otherwise (also: interrupted at the timeout, or
  not run because the kernel died).

When the fill cell is its own check (the check is in the same cell), an ``AssertionError`` of that cell is a failure.

Exit status: 0 when every exercise passed; 1 when any failed or had an error; 3 when none failed but some were not
attempted (the work is not complete: still non-zero); 2 when there was nothing to grade (a path that is not a
notebook or a folder, or no exercise metadata in any notebook).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from nbclient import NotebookClient
from nbformat import NotebookNode

from tools.exercises import EXERCISE_KEY, ExerciseCells, IsNotAttempted
from tools.notebook_io import ReadNotebook

QUICK_ENV = {'COURSE_QUICK': '1'}
DEFAULT_TIMEOUT = 600  #<! Seconds per cell: a quick-mode lesson runs in about 2.5 minutes in all
KERNEL_NAME = 'python3'

PASSED = 'passed'
FAILED = 'failed'
NOT_ATTEMPTED = 'not attempted'
ERROR = 'error'
STATUSES = (PASSED, FAILED, NOT_ATTEMPTED, ERROR)
EXIT_PASSED, EXIT_FAILED, EXIT_NOTHING, EXIT_INCOMPLETE = 0, 1, 2, 3
_MAX_MESSAGE = 110  #<! Characters of a message in the table (the JSON keeps it whole)


@dataclass(frozen=True)
class CellError:
    ename: str
    evalue: str


@dataclass(frozen=True)
class Outcome:
    """The result of one exercise: one of ``STATUSES`` and, unless passed, what happened (the whole message)."""

    status: str
    message: str = ''

    @property
    def text(self) -> str:
        """The result as one line: ``passed``, ``failed: <first line>``..."""
        if self.status in (PASSED, NOT_ATTEMPTED):
            return self.status
        firstLine = self.message.strip().split('\n')[0] if self.message.strip() else '(no message)'
        return f'{self.status}: {firstLine}'


@dataclass(frozen=True)
class Result:
    notebook: str
    exercise: str
    status: str
    message: str
    seconds: float


def CellErrorOf(oCell: NotebookNode) -> CellError | None:
    """The error a run cell raised, if any."""
    for dOutput in oCell.get('outputs', []):
        if dOutput.get('output_type') == 'error':
            return CellError(dOutput.get('ename', ''), dOutput.get('evalue', ''))
    return None


def _Ran(oCell: NotebookNode) -> bool:
    return oCell.get('execution_count') is not None or bool(oCell.get('outputs'))


def ExecuteNotebook(oNotebook: NotebookNode, cwd: Path, timeout: int = DEFAULT_TIMEOUT,
                    dEnv: dict[str, str] | None = None) -> str | None:
    """Run the notebook in place in a fresh kernel (quick mode, in ``cwd``), errors allowed, every cell interrupted
    after ``timeout`` seconds. Return None, or why the run stopped early (the kernel died)."""
    for oCell in oNotebook.cells:
        if oCell.cell_type == 'code':
            oCell.outputs, oCell.execution_count = [], None
    oClient = NotebookClient(oNotebook, timeout=timeout, kernel_name=KERNEL_NAME, allow_errors=True,
                             interrupt_on_timeout=True, resources={'metadata': {'path': str(cwd)}})
    try:
        oClient.execute(env=os.environ | QUICK_ENV | (dEnv or {}))
    except Exception as oErr:  #<! DeadKernelError and the like: what ran is kept, the rest is reported as not run
        return f'{type(oErr).__name__}: {str(oErr).strip().splitlines()[0] if str(oErr).strip() else ""}'
    return None


def ClassifyExercise(name: str, oFillCell: NotebookNode, oCheckCell: NotebookNode, timeout: int = DEFAULT_TIMEOUT,
                     stopReason: str | None = None) -> Outcome:
    """The outcome of one exercise from its run fill and check cells (the same cell when it checks itself)."""
    lCells = [('fill', oFillCell)] + ([] if oCheckCell is oFillCell else [('check', oCheckCell)])
    for role, oCell in lCells:
        if not _Ran(oCell):
            return Outcome(ERROR, f'the {role} cell did not run ({stopReason or "the run stopped before it"})')
        oError = CellErrorOf(oCell)
        if oError is None:
            continue
        if IsNotAttempted(oError.ename, oError.evalue, name):
            return Outcome(NOT_ATTEMPTED, oError.evalue)
        if oError.ename == 'AssertionError' and (role == 'check' or oCheckCell is oFillCell):
            return Outcome(FAILED, oError.evalue)
        if oError.ename == 'KeyboardInterrupt':
            return Outcome(ERROR, f'the {role} cell ran past the timeout ({timeout} s) and was interrupted')
        return Outcome(ERROR, f'{oError.ename}: {oError.evalue}' if oError.evalue else oError.ename)
    return Outcome(PASSED)


def ExerciseCheckCell(oNotebook: NotebookNode, cellIdx: int) -> NotebookNode | None:
    """The check cell of the exercise in cell ``cellIdx`` (None when its id is not in the notebook)."""
    dExercise = oNotebook.cells[cellIdx].metadata[EXERCISE_KEY]
    checkId = dExercise.get('check') if isinstance(dExercise, dict) else None
    return next((oCell for oCell in oNotebook.cells if oCell.get('id') == checkId), None)


def GradeNotebook(notebookPath: Path, timeout: int = DEFAULT_TIMEOUT) -> list[Result]:
    """Run one notebook and return a result per exercise (none when it has no exercise metadata: not run)."""
    oNotebook = ReadNotebook(notebookPath)
    lExercises = ExerciseCells(oNotebook)
    if not lExercises:
        return []
    oRun = copy.deepcopy(oNotebook)
    startTime = time.perf_counter()
    stopReason = ExecuteNotebook(oRun, notebookPath.parent.resolve(), timeout)
    seconds = time.perf_counter() - startTime
    lResults = []
    for cellIdx, dExercise in lExercises:
        dExercise = dExercise if isinstance(dExercise, dict) else {}
        name = str(dExercise.get('name', f'cell {cellIdx}'))
        oCheckCell = ExerciseCheckCell(oRun, cellIdx)
        if oCheckCell is None:
            oOutcome = Outcome(ERROR, f'its check cell (id {dExercise.get("check")!r}) is not in the notebook: '
                                      'restore it from the exercise notebook')
        else:
            oOutcome = ClassifyExercise(name, oRun.cells[cellIdx], oCheckCell, timeout, stopReason)
        lResults.append(Result(str(notebookPath), name, oOutcome.status, oOutcome.message, round(seconds, 1)))
    return lResults


def NotebookPaths(lPaths: list[Path]) -> list[Path]:
    """The notebooks named, and those under the folders named (sorted, without Jupyter's checkpoints)."""
    lNotebooks = []
    for path in lPaths:
        if path.is_dir():
            lNotebooks.extend(p for p in sorted(path.rglob('*.ipynb')) if '.ipynb_checkpoints' not in p.parts)
        elif path.suffix == '.ipynb' and path.is_file():
            lNotebooks.append(path)
        else:
            raise FileNotFoundError(f'{path}: not a notebook (.ipynb) or a folder of notebooks')
    return lNotebooks


def FormatTable(lResults: list[Result]) -> str:
    """Results as a small table per notebook, and a summary line."""
    lLines = []
    width = max((len(oResult.exercise) for oResult in lResults), default=8)
    for notebook in dict.fromkeys(oResult.notebook for oResult in lResults):
        lNotebook = [oResult for oResult in lResults if oResult.notebook == notebook]
        lLines.append(f'{notebook} ({lNotebook[0].seconds:.0f} s)')
        for oResult in lNotebook:
            text = Outcome(oResult.status, oResult.message).text
            text = text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE - 3] + '...'
            lLines.append(f'  {oResult.exercise:<{width}}  {text}')
    dCounts = {status: sum(oResult.status == status for oResult in lResults) for status in STATUSES}
    dLabels = {ERROR: 'with an error'}
    lLines.append(f'{len(lResults)} exercises: ' + ', '.join(f'{num} {dLabels.get(status, status)}'
                                                              for status, num in dCounts.items()))
    return '\n'.join(lLines)


def ExitStatus(lResults: list[Result]) -> int:
    lStatuses = [oResult.status for oResult in lResults]
    if not lStatuses:
        return EXIT_NOTHING
    if FAILED in lStatuses or ERROR in lStatuses:
        return EXIT_FAILED
    return EXIT_INCOMPLETE if NOT_ATTEMPTED in lStatuses else EXIT_PASSED


def main(lArgs: list[str] | None = None) -> int:
    oParser = argparse.ArgumentParser(prog='python -m tools.grade', description=__doc__.splitlines()[0],
                                      epilog='Exit status: 0 all passed, 1 a failure or an error, 3 only passed and '
                                             'not attempted, 2 nothing to grade.')
    oParser.add_argument('paths', nargs='+', type=Path, metavar='PATH', help='an exercise notebook or a folder')
    oParser.add_argument('--timeout', type=int, default=DEFAULT_TIMEOUT, help='seconds per cell (default: %(default)s)')
    oParser.add_argument('--json', action='store_true', help='print one JSON record per exercise instead of a table')
    oArgs = oParser.parse_args(lArgs)
    try:
        lNotebooks = NotebookPaths(oArgs.paths)
    except FileNotFoundError as oErr:
        print(f'Error: {oErr}', file=sys.stderr)
        return EXIT_NOTHING
    lResults: list[Result] = []
    for notebookPath in lNotebooks:
        print(f'Running {notebookPath} ...', file=sys.stderr, flush=True)
        lNotebookResults = GradeNotebook(notebookPath, oArgs.timeout)
        if not lNotebookResults:
            print(f'{notebookPath}: no exercise metadata ("{EXERCISE_KEY}" on a fill cell): nothing to grade',
                  file=sys.stderr)
        lResults.extend(lNotebookResults)
    if not lResults:
        print(f'Error: no exercises to grade in {", ".join(map(str, oArgs.paths))}', file=sys.stderr)
        return EXIT_NOTHING
    print(json.dumps([asdict(oResult) for oResult in lResults], indent=1, ensure_ascii=False) if oArgs.json
          else FormatTable(lResults))
    return ExitStatus(lResults)


if __name__ == '__main__':
    sys.exit(main())
