"""Generate the students' exercise notebooks from the solution notebooks.

The notebooks in ``notebooks/`` are the solutions. Code that students write sits between the marker lines
``FILL_START`` and ``FILL_END``; a single assignment line may instead end with ``SINGLE_LINE_MARKER``.

In the exercise version (``notebooks/exercises/``) every marked block keeps its markers and its leading instruction
comments, and its code becomes ONE line at the block's indentation::

    raise NotImplementedError('Fill in <Name>: <hint>')

A ``#<Fill This>`` line becomes the same line (at its own indentation, still ending with the marker). Running an
exercise that was not filled in stops there with a message that names the exercise; the grader
(``python -m tools.grade``) reads it as "not attempted".

Exercise metadata: the solution's code cell that holds the fill block(s) of one exercise carries, under the cell
metadata key ``EXERCISE_KEY`` (``"exercise"``)::

    {"name": "SoftmaxStable",                      # the exercise's name: unique in the notebook, one line
     "hint": "subtract each row's maximum, ...",   # one line, shown in the NotImplementedError
     "check": "<cell id>",                         # the code cell whose run checks it (this cell or a later one)
     "setup": ["<cell id>", ...],                  # earlier cells to run first (cheap: imports, small data)
     "mutants": [{"name": "...", "replace": [["old", "new"], ...]}, ...]}  # solution only, see tools/mutants.py

The generator keeps ``name``, ``hint``, ``check`` and ``setup`` (the grader uses them) and strips ``mutants``. A fill
cell without metadata (the lessons before they carried it) still generates, with a name derived from the code (the
``def`` / ``class`` around or in the block, else "this block") and a generic hint; ``CheckExerciseMetadata`` lists
such cells. Metadata that is present but malformed is refused with an error that names the notebook, cell and
exercise.

The answers to the (?) questions, ``<details><summary>Answer</summary> ... </details>`` blocks in markdown cells,
are removed, and so are the code cells that check a numeric answer (first line ``# Answer check``). Outputs are
cleared and a banner cell says which version it is.

    python -m tools.exercises          # (re)write the exercise notebooks, report what changed
    python -m tools.exercises --check  # exit 1 if they differ from what would be generated (CI)
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from tools.colab import ReadRepoLocation, StampNotebook
from tools.notebook_io import REPO_ROOT, LessonNotebooks, NotebookRelPath, ReadNotebook, SyncNotebook

FILL_START = '#===========================Fill This===========================#'
FILL_END = '#===============================================================#'
SINGLE_LINE_MARKER = '#<Fill This>'
FILL_MESSAGE_PREFIX = 'Fill in '  #<! Every blank's NotImplementedError message starts with it, then '<Name>: '
FALLBACK_NAME = 'this block'
FALLBACK_HINT = 'follow the instructions in the comments above'
FALLBACK_HINT_BARE = 'write the code of this block'  #<! A block without instruction comments
BANNER_CELL_ID = 'exercise-banner'
ANSWER_SUMMARY = '<summary>Answer</summary>'
ANSWER_CHECK_MARK = '# Answer check'  #<! First line of a code cell that computes a numeric answer: solution only
# A whole answer block: from `<details>` to its `</details>`, with the blank lines after it
_ANSWER_BLOCK = re.compile(r'[ \t]*<details>\s*<summary>Answer</summary>.*?</details>[ \t]*\n*', re.S)

EXERCISE_KEY = 'exercise'
EXERCISE_FIELDS = ('name', 'hint', 'check', 'setup', 'mutants')  #<! `name`, `hint`, `check` required
PUBLIC_FIELDS = ('name', 'hint', 'check', 'setup')  #<! What the exercise version keeps
MUTANT_FIELDS = ('name', 'replace')

# `name = ...`, `mX[ii, jj] = ...`, `a, b = ...`, `x += ...`: the target of a (augmented) assignment
_ASSIGNMENT = re.compile(r'^(?P<target>[A-Za-z_][\w\.]*(\[[^\]]*\])?(\s*,\s*[A-Za-z_][\w\.]*)*)\s*(?P<op>[-+*/@%]?=)(?!=)')
_DEFINITION = re.compile(r'^(?:async\s+)?(?:def|class)\s+(?P<name>[A-Za-z_]\w*)')
# The line a blank becomes (the message in either quote style, as repr() writes it)
_BLANK_LINE = re.compile(r'''^\s*raise NotImplementedError\((?P<q>['"])Fill in .*(?P=q)\)(\s*#<Fill This>)?\s*$''')


class MarkerError(ValueError):
    """Fill markers or exercise metadata that are wrong: the notebook cannot be turned into an exercise."""


@dataclass(frozen=True)
class FillBlock:
    """One blank of a cell source: lines ``startIdx`` to ``endIdx`` (0-based, both markers included); a single
    marked line has ``startIdx == endIdx``."""

    startIdx: int
    endIdx: int

    @property
    def isSingleLine(self) -> bool:
        return self.startIdx == self.endIdx


def ExerciseCodeCell(source: str, cellId: str, dExercise: dict | None = None) -> NotebookNode:
    """A code cell with the id ``cellId``, carrying ``dExercise`` as its exercise metadata when given (to write a
    fill cell, or a set-up or check cell without it)."""
    oCell = nbformat.v4.new_code_cell(source)
    oCell['id'] = cellId
    if dExercise is not None:
        oCell.metadata[EXERCISE_KEY] = dExercise
    return oCell


def _Indent(line: str) -> str:
    return line[:len(line) - len(line.lstrip())]


def BlankMessage(name: str, hint: str) -> str:
    return f'{FILL_MESSAGE_PREFIX}{name}: {hint}'


def BlankLine(indent: str, name: str, hint: str) -> str:
    """The line a blank becomes: ``raise NotImplementedError('Fill in <name>: <hint>')``."""
    return f'{indent}raise NotImplementedError({BlankMessage(name, hint)!r})'


def IsBlankLine(line: str) -> bool:
    """Whether ``line`` is a blank written by the generator (with or without the single-line marker)."""
    return _BLANK_LINE.match(line) is not None


def IsNotAttempted(ename: str, evalue: str, name: str | None = None) -> bool:
    """Whether an error is a blank's: ``NotImplementedError('Fill in <name>: ...')`` (any name if None)."""
    prefix = FILL_MESSAGE_PREFIX if name is None else f'{FILL_MESSAGE_PREFIX}{name}: '
    return ename == 'NotImplementedError' and evalue.startswith(prefix)


def FillBlocks(source: str, where: str) -> list[FillBlock]:
    """The fill blocks of a cell source, in order; ``where`` names the notebook and cell in errors."""
    lBlocks: list[FillBlock] = []
    startIdx: int | None = None
    for lineIdx, line in enumerate(source.split('\n')):
        stripped = line.strip()
        if stripped == FILL_START:
            if startIdx is not None:
                raise MarkerError(f'{where}, line {lineIdx + 1}: a Fill This block starts inside another one (nested).')
            startIdx = lineIdx
        elif stripped == FILL_END:
            if startIdx is None:
                raise MarkerError(f'{where}, line {lineIdx + 1}: an end marker without a Fill This start marker.')
            lBlocks.append(FillBlock(startIdx, lineIdx))
            startIdx = None
        elif startIdx is None and stripped.endswith(SINGLE_LINE_MARKER):
            if _ASSIGNMENT.match(stripped) is None and not IsBlankLine(line):
                raise MarkerError(f'{where}, line {lineIdx + 1}: {SINGLE_LINE_MARKER} marks an assignment line only.')
            lBlocks.append(FillBlock(lineIdx, lineIdx))
    if startIdx is not None:
        raise MarkerError(f'{where}: a Fill This block is never closed (missing end marker).')
    return lBlocks


def _NumInstructions(lBody: list[str]) -> int:
    """The number of leading comment lines of a block's body: its instructions, kept in the exercise."""
    return next((ii for ii, line in enumerate(lBody) if not line.strip().startswith('#')), len(lBody))


def _FallbackName(lLines: list[str], oBlock: FillBlock, indent: str) -> str:
    """A name for a blank without metadata: the ``def`` / ``class`` around it (``Outer.inner``), else the ones it
    defines, else ``FALLBACK_NAME``."""
    lOuter: list[str] = []
    bound = len(indent)
    for line in reversed(lLines[:oBlock.startIdx]):
        stripped = line.strip()
        if not stripped or stripped.startswith('#') or len(_Indent(line)) >= bound:
            continue
        bound = len(_Indent(line))
        if (oMatch := _DEFINITION.match(stripped)) is not None:
            lOuter.append(oMatch['name'])
        if bound == 0:
            break
    if lOuter:
        return '.'.join(reversed(lOuter))
    lInner = [oMatch['name'] for line in lLines[oBlock.startIdx + 1:oBlock.endIdx]
              if _Indent(line) == indent and (oMatch := _DEFINITION.match(line.strip())) is not None]
    return ', '.join(lInner) or FALLBACK_NAME


def BlankSource(source: str, where: str, name: str | None = None, hint: str | None = None) -> tuple[str, int]:
    """Return the cell source with every fill block blanked, and the number of blocks.

    ``name`` and ``hint`` (from the cell's exercise metadata) go into every blank's message; without them each blank
    gets a derived name and a generic hint. ``where`` names the notebook and cell in error messages.
    """
    lLines = source.split('\n')
    lBlocks = FillBlocks(source, where)
    lOut: list[str] = []
    nextIdx = 0
    for oBlock in lBlocks:
        lOut.extend(lLines[nextIdx:oBlock.startIdx])
        nextIdx = oBlock.endIdx + 1
        if oBlock.isSingleLine:
            line = lLines[oBlock.startIdx]
            oMatch = _ASSIGNMENT.match(line.strip())
            target = oMatch['target'] if oMatch is not None else None
            blankHint = hint or (f'write the line that sets {target}' if target else FALLBACK_HINT_BARE)
            blankName = name or _FallbackName(lLines, oBlock, _Indent(line))
            lOut.append(f'{BlankLine(_Indent(line), blankName, blankHint)}  {SINGLE_LINE_MARKER}')
            continue
        lBody = lLines[oBlock.startIdx + 1:oBlock.endIdx]
        numInstructions = _NumInstructions(lBody)
        lCode = [line for line in lBody[numInstructions:] if line.strip()]
        indent = min((_Indent(line) for line in lCode), key=len) if lCode else _Indent(lLines[oBlock.startIdx])
        blankName = name or _FallbackName(lLines, oBlock, indent)
        blankHint = hint or (FALLBACK_HINT if numInstructions else FALLBACK_HINT_BARE)
        lOut.append(lLines[oBlock.startIdx])
        lOut.extend(lBody[:numInstructions])  #<! The instructions stay
        lOut.append(BlankLine(indent, blankName, blankHint))
        lOut.append(lLines[oBlock.endIdx])
    lOut.extend(lLines[nextIdx:])
    return '\n'.join(lOut), len(lBlocks)


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


# ------------------------------------------------------------------------------------------------
# Exercise metadata
# ------------------------------------------------------------------------------------------------
def ExerciseCells(oNotebook: NotebookNode) -> list[tuple[int, dict]]:
    """The ``(cell index, exercise metadata)`` of every cell that carries exercise metadata, in order."""
    return [(cellIdx, oCell.metadata[EXERCISE_KEY]) for cellIdx, oCell in enumerate(oNotebook.cells)
            if EXERCISE_KEY in oCell.get('metadata', {})]


def FillCellIndices(oNotebook: NotebookNode, where: str = 'notebook') -> list[int]:
    """The code cells that hold at least one fill block (solution or exercise version)."""
    return [cellIdx for cellIdx, oCell in enumerate(oNotebook.cells)
            if oCell.cell_type == 'code' and FillBlocks(oCell.source, f'{where}, cell {cellIdx}')]


def _IsOneLine(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip()) and '\n' not in value


def _MutantProblems(lMutants: object, where: str) -> list[str]:
    """The shape of ``mutants`` (what they do to the source is checked by tools/mutants.py)."""
    if not isinstance(lMutants, list):
        return [f'{where}: "mutants" must be a list of {{"name": ..., "replace": [[old, new], ...]}}']
    lProblems, setNames = [], set()
    for mutantIdx, dMutant in enumerate(lMutants):
        whereMutant = f'{where}, mutant {mutantIdx}'
        if not isinstance(dMutant, dict) or set(dMutant) != set(MUTANT_FIELDS):
            lProblems.append(f'{whereMutant}: expected the keys {list(MUTANT_FIELDS)}, got '
                             f'{sorted(dMutant) if isinstance(dMutant, dict) else type(dMutant).__name__}')
            continue
        if not _IsOneLine(dMutant['name']):
            lProblems.append(f'{whereMutant}: "name" must be a non-empty one-line string, got {dMutant["name"]!r}')
        elif dMutant['name'] in setNames:
            lProblems.append(f'{whereMutant}: the name {dMutant["name"]!r} is used twice')
        setNames.add(dMutant['name'])
        lReplace = dMutant['replace']
        if not (isinstance(lReplace, list) and lReplace and all(
                isinstance(lPair, list) and len(lPair) == 2 and all(isinstance(s, str) for s in lPair) and lPair[0]
                for lPair in lReplace)):
            lProblems.append(f'{whereMutant} ({dMutant["name"]!r}): "replace" must be a non-empty list of '
                             f'[old, new] string pairs with a non-empty old, got {lReplace!r}')
    return lProblems


def ExerciseProblems(oNotebook: NotebookNode, where: str = 'notebook') -> list[str]:
    """What is wrong with the exercise metadata that is present (empty when it is right or absent)."""
    dIdx = {oCell.get('id'): cellIdx for cellIdx, oCell in enumerate(oNotebook.cells)}
    lProblems: list[str] = []
    setNames: set[str] = set()
    for cellIdx, dExercise in ExerciseCells(oNotebook):
        oCell = oNotebook.cells[cellIdx]
        whereCell = f'{where}, cell {cellIdx} (id {oCell.get("id")!r})'
        if not isinstance(dExercise, dict):
            lProblems.append(f'{whereCell}: "{EXERCISE_KEY}" must be an object, got {type(dExercise).__name__}')
            continue
        name = dExercise.get('name')
        whereEx = f'{whereCell}, exercise {name!r}'
        try:
            hasBlock = oCell.cell_type == 'code' and bool(FillBlocks(oCell.source, whereCell))
        except MarkerError as oErr:
            lProblems.append(str(oErr))
            continue
        if not hasBlock:
            lProblems.append(f'{whereEx}: exercise metadata on a cell without a fill block (put it on the code cell '
                             'that holds the Fill This block)')
        if lUnknown := sorted(set(dExercise) - set(EXERCISE_FIELDS)):
            lProblems.append(f'{whereEx}: unknown keys {lUnknown}; the keys are {list(EXERCISE_FIELDS)}')
        for key in ('name', 'hint'):
            if not _IsOneLine(dExercise.get(key)):
                lProblems.append(f'{whereEx}: "{key}" must be a non-empty one-line string, got {dExercise.get(key)!r}')
        if isinstance(name, str):
            if name in setNames:
                lProblems.append(f'{whereEx}: two exercises named {name!r} (the grader reports them by name)')
            setNames.add(name)
        checkId = dExercise.get('check')
        checkIdx = dIdx.get(checkId) if isinstance(checkId, str) else None
        if checkIdx is None:
            lProblems.append(f'{whereEx}: "check" must be the id of a code cell of this notebook, got {checkId!r}')
        elif oNotebook.cells[checkIdx].cell_type != 'code' or checkIdx < cellIdx:
            lProblems.append(f'{whereEx}: the check cell {checkId!r} (cell {checkIdx}) must be a code cell at or '
                             'after the exercise\'s cell')
        elif _IsSolutionOnly(oNotebook.cells[checkIdx]):
            lProblems.append(f'{whereEx}: the check cell {checkId!r} starts with {ANSWER_CHECK_MARK!r}: it is not in '
                             'the exercise version')
        lSetup = dExercise.get('setup', [])
        if not isinstance(lSetup, list) or not all(isinstance(s, str) for s in lSetup):
            lProblems.append(f'{whereEx}: "setup" must be a list of cell ids, got {lSetup!r}')
        else:
            lSetupIdx = []
            for setupId in lSetup:
                setupIdx = dIdx.get(setupId)
                if setupIdx is None or setupIdx >= cellIdx or oNotebook.cells[setupIdx].cell_type != 'code':
                    lProblems.append(f'{whereEx}: setup cell {setupId!r} must be the id of a code cell before the '
                                     f'exercise\'s cell {cellIdx}')
                elif _IsSolutionOnly(oNotebook.cells[setupIdx]):
                    lProblems.append(f'{whereEx}: setup cell {setupId!r} starts with {ANSWER_CHECK_MARK!r}: it is '
                                     'not in the exercise version')
                lSetupIdx.append(setupIdx)
            if None not in lSetupIdx and lSetupIdx != sorted(set(lSetupIdx)):
                lProblems.append(f'{whereEx}: list the setup cells once each, in notebook order, got {lSetup}')
        if 'mutants' in dExercise:
            lProblems.extend(_MutantProblems(dExercise['mutants'], whereEx))
    return lProblems


def CheckExerciseMetadata(oNotebook: NotebookNode, where: str = 'notebook') -> list[str]:
    """Every problem of the notebook's exercise metadata: fill cells without it, and malformed metadata."""
    try:
        lFillIdx = FillCellIndices(oNotebook, where)
    except MarkerError as oErr:
        return [str(oErr)]
    lProblems = [f'{where}, cell {cellIdx} (id {oNotebook.cells[cellIdx].get("id")!r}): a fill cell without '
                 f'"{EXERCISE_KEY}" metadata (name, hint, check, setup, mutants)'
                 for cellIdx in lFillIdx if EXERCISE_KEY not in oNotebook.cells[cellIdx].get('metadata', {})]
    return lProblems + ExerciseProblems(oNotebook, where)


def SolutionLeaks(oSolution: NotebookNode, oExercise: NotebookNode, where: str = 'notebook') -> list[str]:
    """What of the solution shows in the exercise version: mutants in the metadata, a code line left in a fill
    block, or a mutant's name or replace text seen more often than in the solution's public part (its sources
    without the fill blocks' code, and its metadata without the mutants)."""
    lLeaks: list[str] = []
    lExerciseText: list[str] = []
    for cellIdx, oCell in enumerate(oExercise.cells):
        dExercise = oCell.get('metadata', {}).get(EXERCISE_KEY)
        if isinstance(dExercise, dict) and 'mutants' in dExercise:
            lLeaks.append(f'{where}, exercise cell {cellIdx}: the exercise metadata keeps its "mutants"')
        lLines = oCell.source.split('\n')
        lBlocks = FillBlocks(oCell.source, f'{where}, exercise cell {cellIdx}') if oCell.cell_type == 'code' else []
        for oBlock in lBlocks:
            lBody = lLines[oBlock.startIdx:oBlock.endIdx + 1] if oBlock.isSingleLine else \
                lLines[oBlock.startIdx + 1:oBlock.endIdx]
            lLeft = [line.strip() for line in lBody
                     if line.strip() and not line.strip().startswith('#') and not IsBlankLine(line)]
            if lLeft:
                lLeaks.append(f'{where}, exercise cell {cellIdx}: solution code left in a fill block: {lLeft[0]!r}')
        lExerciseText.append('\n'.join(line for line in lLines if not IsBlankLine(line)))
        lExerciseText.append(json.dumps(oCell.get('metadata', {}), ensure_ascii=False))
    exerciseText = '\n'.join(lExerciseText)
    lPublicText: list[str] = []
    lSecrets: list[tuple[str, str]] = []
    for cellIdx, oCell in enumerate(oSolution.cells):
        lLines = oCell.source.split('\n')
        if oCell.cell_type == 'code':
            for oBlock in reversed(FillBlocks(oCell.source, f'{where}, cell {cellIdx}')):
                if oBlock.isSingleLine:
                    del lLines[oBlock.startIdx]
                else:
                    lBody = lLines[oBlock.startIdx + 1:oBlock.endIdx]
                    lLines[oBlock.startIdx + 1:oBlock.endIdx] = lBody[:_NumInstructions(lBody)]
        lPublicText.append('\n'.join(lLines))
        dMeta = copy.deepcopy(dict(oCell.get('metadata', {})))
        dExercise = dMeta.get(EXERCISE_KEY)
        if isinstance(dExercise, dict):
            for dMutant in dExercise.pop('mutants', None) or []:
                lSecrets.append((f'mutant {dMutant.get("name")!r}', str(dMutant.get('name'))))
                lSecrets.extend((f'mutant {dMutant.get("name")!r}', text)
                                for lPair in dMutant.get('replace', []) for text in lPair if text.strip())
        lPublicText.append(json.dumps(dMeta, ensure_ascii=False))
    publicText = '\n'.join(lPublicText)
    for label, text in lSecrets:
        if exerciseText.count(text) > publicText.count(text):
            lLeaks.append(f'{where}: the text {text!r} of {label} shows in the exercise version')
    return lLeaks


def PublicExercise(dExercise: dict) -> dict:
    """The exercise metadata the exercise version keeps (no mutants)."""
    return {key: copy.deepcopy(dExercise[key]) for key in PUBLIC_FIELDS if key in dExercise}


def BannerCell(solutionRelPath: str) -> NotebookNode:
    oCell = nbformat.v4.new_markdown_cell(
        f"> **Exercise version.** Replace each `raise NotImplementedError('{FILL_MESSAGE_PREFIX}...')` line by your "
        f'code: between the *Fill This* marker lines, or on a line marked `{SINGLE_LINE_MARKER}`; its message names '
        f'the exercise and gives a hint. The lesson with its solutions is `{solutionRelPath}`.\n'
        f'> Grade your notebook with `python -m tools.grade <this notebook>`.\n'
        f'> This file is generated by `python -m tools.exercises`: instructors edit the solution, not this file.')
    oCell['id'] = BANNER_CELL_ID
    return oCell


def MakeExercise(oSolution: NotebookNode, solutionFile: Path, exerciseFile: Path,
                 repoRoot: Path = REPO_ROOT) -> tuple[NotebookNode, int]:
    """Build the exercise notebook from a solution notebook; return it and its number of fill blocks."""
    if lProblems := ExerciseProblems(oSolution, solutionFile.name):
        raise MarkerError('\n'.join(lProblems))
    oExercise = copy.deepcopy(oSolution)
    numBlocks = 0
    for cellIdx, oCell in enumerate(oExercise.cells):
        if oCell.cell_type == 'markdown':
            oCell.source, _ = StripAnswers(oCell.source, f'{solutionFile.name}, cell {cellIdx}')
        if oCell.cell_type != 'code':
            continue
        dExercise = oCell.metadata.get(EXERCISE_KEY)
        name, hint = (dExercise['name'], dExercise['hint']) if dExercise else (None, None)
        oCell.source, numCellBlocks = BlankSource(oCell.source, f'{solutionFile.name}, cell {cellIdx}', name, hint)
        if dExercise:
            oCell.metadata[EXERCISE_KEY] = PublicExercise(dExercise)
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
