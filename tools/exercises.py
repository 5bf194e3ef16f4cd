"""Generate the students' exercise notebooks from the solution notebooks.

The notebooks in ``notebooks/`` are the solutions. Code that students write sits between the marker lines
``FILL_START`` and ``FILL_END``; a single line may instead end with ``SINGLE_LINE_MARKER``. In the exercise version
(``notebooks/exercises/``), every marked block keeps its markers and its leading instruction comments, and its code
becomes ``???`` placeholders: ``target = ???`` for each assignment at the block's own indentation (a
``SyntaxError`` until filled), or, for any other code, one line raising ``NotImplementedError('???: ...')`` (a bare
``???`` line would be read by IPython as a help request and pass silently). The answers to the (?) questions,
``<details><summary>Answer</summary> ... </details>`` blocks in markdown cells, are removed, and so are the code
cells that check a numeric answer (first line ``# Answer check``). Outputs are cleared and
a banner cell says which version it is.

    python -m tools.exercises          # (re)write the exercise notebooks, report what changed
    python -m tools.exercises --check  # exit 1 if they differ from what would be generated (CI)
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from tools.colab import ReadRepoLocation, StampNotebook
from tools.notebook_io import REPO_ROOT, LessonNotebooks, NotebookRelPath, ReadNotebook, SyncNotebook

FILL_START = '#===========================Fill This===========================#'
FILL_END = '#===============================================================#'
SINGLE_LINE_MARKER = '#<Fill This>'
PLACEHOLDER = '???'
STATEMENT_PLACEHOLDER = f"raise NotImplementedError('{PLACEHOLDER}: write the code of this block')"
BANNER_CELL_ID = 'exercise-banner'
ANSWER_SUMMARY = '<summary>Answer</summary>'
ANSWER_CHECK_MARK = '# Answer check'  #<! First line of a code cell that computes a numeric answer: solution only
# A whole answer block: from `<details>` to its `</details>`, with the blank lines after it
_ANSWER_BLOCK = re.compile(r'[ \t]*<details>\s*<summary>Answer</summary>.*?</details>[ \t]*\n*', re.S)

# `name = ...`, `mX[ii, jj] = ...`, `a, b = ...`, `x += ...`: the target of a (augmented) assignment
_ASSIGNMENT = re.compile(r'^(?P<target>[A-Za-z_][\w\.]*(\[[^\]]*\])?(\s*,\s*[A-Za-z_][\w\.]*)*)\s*(?P<op>[-+*/@%]?=)(?!=)')


class MarkerError(ValueError):
    """Fill markers that are unbalanced or nested: the notebook cannot be turned into an exercise."""


def _Indent(line: str) -> str:
    return line[:len(line) - len(line.lstrip())]


def _BlankCode(lCode: list[str]) -> list[str]:
    """Replace the code lines of one fill block by placeholders (see the module's docstring)."""
    lLines = [line for line in lCode if line.strip()]
    if not lLines:
        return []
    baseIndent = min((_Indent(line) for line in lLines), key=len)
    lOut = []
    for line in lLines:
        if _Indent(line) != baseIndent:
            continue
        oMatch = _ASSIGNMENT.match(line.strip())
        if oMatch is None:
            return [f'{baseIndent}{STATEMENT_PLACEHOLDER}']  #<! Not an assignment: the whole block is theirs
        lOut.append(f'{baseIndent}{oMatch["target"]} {oMatch["op"]} {PLACEHOLDER}')
    return lOut


def BlankSource(source: str, where: str) -> tuple[str, int]:
    """Return the cell source with every fill block blanked, and the number of blocks.

    ``where`` names the notebook and cell in error messages.
    """
    lOut: list[str] = []
    lBlock: list[str] | None = None
    numBlocks = 0
    for lineIdx, line in enumerate(source.split('\n'), start=1):
        stripped = line.strip()
        if stripped == FILL_START:
            if lBlock is not None:
                raise MarkerError(f'{where}, line {lineIdx}: a Fill This block starts inside another one (nested).')
            lBlock = []
            lOut.append(line)
            numBlocks += 1
        elif stripped == FILL_END:
            if lBlock is None:
                raise MarkerError(f'{where}, line {lineIdx}: an end marker without a Fill This start marker.')
            numComments = next((ii for ii, blockLine in enumerate(lBlock) if not blockLine.strip().startswith('#')),
                               len(lBlock))
            lOut.extend(lBlock[:numComments])  #<! The instructions stay
            lOut.extend(_BlankCode(lBlock[numComments:]))
            lOut.append(line)
            lBlock = None
        elif lBlock is not None:
            lBlock.append(line)
        elif stripped.endswith(SINGLE_LINE_MARKER):
            oMatch = _ASSIGNMENT.match(stripped)
            if oMatch is None:
                raise MarkerError(f'{where}, line {lineIdx}: {SINGLE_LINE_MARKER} marks an assignment line only.')
            lOut.append(f'{_Indent(line)}{oMatch["target"]} {oMatch["op"]} {PLACEHOLDER} {SINGLE_LINE_MARKER}')
            numBlocks += 1
        else:
            lOut.append(line)
    if lBlock is not None:
        raise MarkerError(f'{where}: a Fill This block is never closed (missing end marker).')
    return '\n'.join(lOut), numBlocks


def StripAnswers(source: str, where: str) -> tuple[str, int]:
    """Return a markdown source without its answer blocks, and their number.

    ``where`` names the notebook and cell in the error raised for an answer block that is never closed.
    """
    newSource, numAnswers = _ANSWER_BLOCK.subn('', source)
    if ANSWER_SUMMARY in newSource:
        raise MarkerError(f'{where}: an answer block (<details><summary>Answer</summary>) has no closing </details>.')
    return newSource.rstrip('\n') if numAnswers else newSource, numAnswers


def _IsSolutionOnly(oCell: NotebookNode) -> bool:
    # A markdown cell left empty held only answers; an answer-check cell would show the answer
    if oCell.cell_type == 'markdown':
        return not oCell.source.strip()
    return oCell.cell_type == 'code' and oCell.source.lstrip().startswith(ANSWER_CHECK_MARK)


def BannerCell(solutionRelPath: str) -> NotebookNode:
    oCell = nbformat.v4.new_markdown_cell(
        f'> **Exercise version.** Write your code where you see `{PLACEHOLDER}`, between the *Fill This* marker '
        f'lines. The lesson with its solutions is `{solutionRelPath}`.\n'
        f'> This file is generated by `python -m tools.exercises`: instructors edit the solution, not this file.')
    oCell['id'] = BANNER_CELL_ID
    return oCell


def MakeExercise(oSolution: NotebookNode, solutionFile: Path, exerciseFile: Path,
                 repoRoot: Path = REPO_ROOT) -> tuple[NotebookNode, int]:
    """Build the exercise notebook from a solution notebook; return it and its number of fill blocks."""
    oExercise = copy.deepcopy(oSolution)
    numBlocks = 0
    for cellIdx, oCell in enumerate(oExercise.cells):
        if oCell.cell_type == 'markdown':
            oCell.source, _ = StripAnswers(oCell.source, f'{solutionFile.name}, cell {cellIdx}')
        if oCell.cell_type != 'code':
            continue
        oCell.source, numCellBlocks = BlankSource(oCell.source, f'{solutionFile.name}, cell {cellIdx}')
        numBlocks += numCellBlocks
        oCell.outputs = []
        oCell.execution_count = None
    oExercise.cells = [oCell for oCell in oExercise.cells if not _IsSolutionOnly(oCell)]
    oExercise = StampNotebook(oExercise, ReadRepoLocation(repoRoot / 'pyproject.toml'),
                              NotebookRelPath(exerciseFile, repoRoot))
    oExercise.cells.insert(1, BannerCell(NotebookRelPath(solutionFile, repoRoot)))
    return oExercise, numBlocks


def ExercisePath(solutionFile: Path) -> Path:
    return solutionFile.parent / 'exercises' / solutionFile.name


def main(lArgs: list[str] | None = None) -> int:
    oParser = argparse.ArgumentParser(prog='python -m tools.exercises', description=__doc__.splitlines()[0])
    oParser.add_argument('--check', action='store_true', help='only check; exit 1 if an exercise would change')
    oParser.add_argument('--root', type=Path, default=REPO_ROOT, help='repository root (default: this clone)')
    oArgs = oParser.parse_args(lArgs)
    lStale = []
    for solutionFile in LessonNotebooks(oArgs.root / 'notebooks'):
        exerciseFile = ExercisePath(solutionFile)
        oSolution = ReadNotebook(solutionFile)
        try:
            oExercise, numBlocks = MakeExercise(oSolution, solutionFile, exerciseFile, oArgs.root)
        except MarkerError as oErr:
            print(f'Error: {oErr}', file=sys.stderr)
            return 2
        relPath = NotebookRelPath(exerciseFile, oArgs.root)
        isStale = SyncNotebook(oExercise, exerciseFile, checkOnly=oArgs.check)
        if oArgs.check:
            if isStale:
                lStale.append(relPath)
        else:
            print(f'{"Wrote" if isStale else "Unchanged"} {relPath} ({numBlocks} fill blocks)')
    if lStale:
        print(f'Exercise notebooks out of date: {", ".join(lStale)}. Run: python -m tools.exercises')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
