"""Exercise notebooks: generated from the solutions, never drifting, stopping at their first fill cell."""

from __future__ import annotations

import ast
import copy
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tools import exercises
from tools.exercises import ExerciseCodeCell as _CodeCell
from tools.exercises import (ANSWER_CHECK_MARK, ANSWER_SUMMARY, EXERCISE_KEY, FALLBACK_HINT, FALLBACK_HINT_BARE,
                             FALLBACK_NAME, FILL_END, FILL_START, SINGLE_LINE_MARKER, BlankLine, BlankSource,
                             CheckExerciseMetadata, ExerciseProblems, IsBlankLine, IsNotAttempted, MakeExercise,
                             MarkerError, SolutionLeaks, StripAnswers)
from tools.notebook_io import REPO_ROOT, LessonNotebooks

# The lead turns this on once every lesson's fill cells carry exercise metadata (name, hint, check, setup, mutants)
REQUIRE_EXERCISE_METADATA = True

SOLUTION_NOTEBOOKS = LessonNotebooks(REPO_ROOT / 'notebooks')
EXERCISE_NOTEBOOKS = [exercises.ExercisePath(p) for p in SOLUTION_NOTEBOOKS]


def _CopyRepo(tmpPath: Path) -> Path:
    """A throw-away copy of what the generator reads and writes."""
    shutil.copy(REPO_ROOT / 'pyproject.toml', tmpPath / 'pyproject.toml')
    shutil.copytree(REPO_ROOT / 'notebooks', tmpPath / 'notebooks')
    return tmpPath


def _FillCellIndices(notebookPath: Path) -> list[int]:
    """The cells of an exercise notebook that hold a blank."""
    oNotebook = nbformat.read(notebookPath, as_version=4)
    return [ii for ii, oCell in enumerate(oNotebook.cells)
            if oCell.cell_type == 'code' and any(IsBlankLine(line) for line in oCell.source.split('\n'))]


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


def test_blocks_keep_instructions_and_become_one_raise_line() -> None:
    source = '\n'.join(['x = 1', FILL_START, '# Compute y.', 'y = x + 1', 'vZ[0], w = y, 2', FILL_END,
                        f'k = 3 {SINGLE_LINE_MARKER}'])
    blanked, numBlocks = BlankSource(source, 'nb, cell 0', 'AddOne', 'add 1 to x')
    assert numBlocks == 2
    message = "'Fill in AddOne: add 1 to x'"
    assert blanked.split('\n') == ['x = 1', FILL_START, '# Compute y.', f'raise NotImplementedError({message})',
                                   FILL_END, f'raise NotImplementedError({message})  {SINGLE_LINE_MARKER}']


def test_the_raise_line_sits_at_the_block_indentation_after_the_instructions() -> None:
    source = '\n'.join(['def F(x):', f'    {FILL_START}', '    # Loop.', '    # Sum.', '    total = 0',
                        '    for ii in range(x):', '        total += ii', '    return total', f'    {FILL_END}'])
    assert BlankSource(source, 'nb, cell 0', 'F', 'sum the range')[0].split('\n') == [
        'def F(x):', f'    {FILL_START}', '    # Loop.', '    # Sum.',
        "    raise NotImplementedError('Fill in F: sum the range')", f'    {FILL_END}']


def test_a_hint_with_quotes_gives_valid_python_and_the_same_message() -> None:
    hint = "the row's sum, not \"the\" column's \\ sum"
    line = BlankLine('', 'Q', hint)
    assert IsBlankLine(line) and IsBlankLine(f'    {line}  {SINGLE_LINE_MARKER}')
    oRaise = ast.parse(line).body[0]
    assert ast.literal_eval(oRaise.exc.args[0]) == f'Fill in Q: {hint}'


@pytest.mark.parametrize(('lLines', 'expected'), [
    (['def Outer(x):', '    """Doc."""', f'    {FILL_START}', '    # Go.', '    y = x', f'    {FILL_END}'],
     f'Fill in Outer: {FALLBACK_HINT}'),
    (['class Net:', '    def forward(self, x):', '        # A comment at the method level', f'        {FILL_START}',
      '        return x', f'        {FILL_END}'], f'Fill in Net.forward: {FALLBACK_HINT_BARE}'),
    (['def Long(a,', '         b):', f'    {FILL_START}', '    return a', f'    {FILL_END}'],
     f'Fill in Long: {FALLBACK_HINT_BARE}'),
    ([FILL_START, '# Two functions.', 'def A():', '    return 1', 'def B():', '    return 2', FILL_END],
     f'Fill in A, B: {FALLBACK_HINT}'),
    ([FILL_START, '# Loop.', 'for ii in range(3):', '    print(ii)', FILL_END],
     f'Fill in {FALLBACK_NAME}: {FALLBACK_HINT}'),
    (['def Size(I, K):', f'    valOut = I - K + 1  {SINGLE_LINE_MARKER}', '    return valOut'],
     'Fill in Size: write the line that sets valOut'),
])
def test_without_metadata_a_name_is_derived_and_the_hint_is_generic(lLines: list[str], expected: str) -> None:
    lBlanked = BlankSource('\n'.join(lLines), 'nb, cell 0')[0].split('\n')
    lRaise = [line for line in lBlanked if IsBlankLine(line)]
    assert len(lRaise) == 1
    assert ast.literal_eval(ast.parse(lRaise[0].strip()).body[0].exc.args[0]) == expected


def test_a_single_line_marker_on_a_non_assignment_is_refused() -> None:
    with pytest.raises(MarkerError, match=f'nb, cell 2, line 1: {SINGLE_LINE_MARKER} marks an assignment'):
        BlankSource(f'print(1)  {SINGLE_LINE_MARKER}', 'nb, cell 2')


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
    """Run up to the first blank (or, with metadata, up to its check cell): the first error is that blank's
    `NotImplementedError('Fill in <Name>: ...')`, raised by the fill cell or by its check."""
    oNotebook = nbformat.read(exercisePath, as_version=4)
    firstFillIdx = _FillCellIndices(exercisePath)[0]
    dExercise = oNotebook.cells[firstFillIdx].metadata.get(EXERCISE_KEY, {})
    lIds = [oCell.get('id') for oCell in oNotebook.cells]
    lastIdx = lIds.index(dExercise['check']) if dExercise.get('check') in lIds else firstFillIdx
    oNotebook.cells = oNotebook.cells[:lastIdx + 1]  #<! Nothing after the first exercise needs to run
    oClient = NotebookClient(oNotebook, timeout=300, kernel_name='python3',
                             resources={'metadata': {'path': str(exercisePath.parent)}})
    with pytest.raises(CellExecutionError):
        oClient.execute()
    dErrors = {ii: o for ii, oCell in enumerate(oNotebook.cells) for o in oCell.get('outputs', [])
               if o.get('output_type') == 'error'}
    assert len(dErrors) == 1 and list(dErrors)[0] in {firstFillIdx, lastIdx}, \
        f'expected the first error in cell {firstFillIdx} (the first fill cell) or {lastIdx} (its check), ' \
        f'got {list(dErrors)}'
    oError = next(iter(dErrors.values()))
    assert IsNotAttempted(oError['ename'], oError['evalue'], dExercise.get('name')), \
        f"expected NotImplementedError('Fill in ...'), got {oError['ename']}: {oError['evalue']}"


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


# A collapsed block other than a hint ("<summary>Hint...") may hold an answer: only hints stay in the exercises
_NON_HINT_DETAILS = re.compile(r'<details>(?!\s*<summary>Hint)')


def _AnswerLeaks(oExercise: nbformat.NotebookNode) -> list[str]:
    return [f'cell {cellIdx} {what}' for cellIdx, oCell in enumerate(oExercise.cells) for what, isLeak in [
        ('holds an answer', ANSWER_SUMMARY in oCell.source or bool(_NON_HINT_DETAILS.search(oCell.source))),
        ('checks an answer', oCell.source.lstrip().startswith(ANSWER_CHECK_MARK))] if isLeak]


@pytest.mark.parametrize('exercisePath', EXERCISE_NOTEBOOKS, ids=lambda p: p.name)
def test_no_answer_leaks_into_the_exercise(exercisePath: Path) -> None:
    """No answer, no answer check, no solution code in a fill block, no mutant (metadata or text)."""
    oExercise = nbformat.read(exercisePath, as_version=4)
    oSolution = nbformat.read(exercisePath.parent.parent / exercisePath.name, as_version=4)
    lLeaks = _AnswerLeaks(oExercise) + SolutionLeaks(oSolution, oExercise, exercisePath.name)
    assert not lLeaks, '\n'.join(lLeaks)


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


# ------------------------------------------------------------------------------------------------
# Exercise metadata
# ------------------------------------------------------------------------------------------------
def _ExerciseDict(**dOverride) -> dict:
    dExercise = {'name': 'MeanOf', 'hint': "sum, then divide by the list's length", 'check': 'check', 'setup': ['data'],
                 'mutants': [{'name': 'divide by two', 'replace': [['/ len(lX)', '/ 2']]},
                             {'name': 'forget to divide', 'replace': [['valSum / len(lX)', 'valSum + 0']]}]}
    return dExercise | dOverride


def _SolutionNotebook(**dOverride) -> nbformat.NotebookNode:
    """A small solution: a data cell, an exercise with its own check cell, and an answer check."""
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell('# Tiny\n\n* (?) Why?\n<details><summary>Answer</summary>Because.</details>'),
        _CodeCell('lValues = [3.0, 1.0, 2.0]', 'data'),
        _CodeCell(f'def MeanOf(lX):\n    {FILL_START}\n    # The mean.\n    valSum = sum(lX)\n'
                  f'    return valSum / len(lX)\n    {FILL_END}', 'fill', _ExerciseDict(**dOverride)),
        _CodeCell("valGot = MeanOf(lValues)\nassert valGot == 2.0, f'expected 2.0, got {valGot}'", 'check'),
        _CodeCell(f'{ANSWER_CHECK_MARK}\nprint(MeanOf([1, 2]))', 'answer-check'),
    ])


def _MakeExercise(oSolution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    solutionFile = REPO_ROOT / 'notebooks' / '01_Tiny.ipynb'  #<! Only named (for the badge and the banner)
    return MakeExercise(oSolution, solutionFile, exercises.ExercisePath(solutionFile))[0]


def test_the_exercise_keeps_name_hint_check_setup_and_strips_the_mutants() -> None:
    oSolution = _SolutionNotebook()
    oExercise = _MakeExercise(oSolution)
    oFill = next(oCell for oCell in oExercise.cells if oCell.get('id') == 'fill')
    dExpected = {key: val for key, val in _ExerciseDict().items() if key != 'mutants'}
    assert oFill.metadata[EXERCISE_KEY] == dExpected
    assert "raise NotImplementedError(\"Fill in MeanOf: sum, then divide by the list's length\")" in oFill.source
    assert 'mutants' in oSolution.cells[2].metadata[EXERCISE_KEY], 'the solution itself is left as it was'
    assert {'data', 'check'} <= {oCell.get('id') for oCell in oExercise.cells}
    assert 'answer-check' not in {oCell.get('id') for oCell in oExercise.cells}


def test_the_leak_check_passes_the_generated_exercise_and_finds_each_leak() -> None:
    oSolution = _SolutionNotebook()
    oExercise = _MakeExercise(oSolution)
    assert SolutionLeaks(oSolution, oExercise, 'nb') == []
    oKeptMutants = nbformat.from_dict(copy.deepcopy(oExercise))
    next(c for c in oKeptMutants.cells if c.get('id') == 'fill').metadata[EXERCISE_KEY]['mutants'] = \
        _ExerciseDict()['mutants']
    lLeaks = SolutionLeaks(oSolution, oKeptMutants, 'nb')
    assert any('keeps its "mutants"' in leak for leak in lLeaks)
    assert any("'divide by two'" in leak and 'shows in the exercise' in leak for leak in lLeaks)
    oKeptCode = nbformat.from_dict(copy.deepcopy(oExercise))
    oFill = next(c for c in oKeptCode.cells if c.get('id') == 'fill')
    oFill.source = oFill.source.replace(FILL_END, f'    return valSum / len(lX)\n    {FILL_END}')
    lLeaks = SolutionLeaks(oSolution, oKeptCode, 'nb')
    assert any("solution code left in a fill block: 'return valSum / len(lX)'" in leak for leak in lLeaks)
    assert any("'/ len(lX)' of mutant 'divide by two' shows" in leak for leak in lLeaks)
    oSolution.cells.append(nbformat.v4.new_markdown_cell('Did you forget to divide?'))
    oExercise = _MakeExercise(oSolution)
    assert SolutionLeaks(oSolution, oExercise, 'nb') == [], 'a text the solution shows outside its fill code is public'
    oExercise.cells.append(nbformat.v4.new_markdown_cell('A common mistake: forget to divide.'))
    assert SolutionLeaks(oSolution, oExercise, 'nb') == \
        ["nb: the text 'forget to divide' of mutant 'forget to divide' shows in the exercise version"]


def test_well_formed_metadata_has_no_problem() -> None:
    assert CheckExerciseMetadata(_SolutionNotebook(), 'nb') == []
    assert CheckExerciseMetadata(_SolutionNotebook(check='fill', setup=[]), 'nb') == [], 'a cell may check itself'


@pytest.mark.parametrize(('dOverride', 'message'), [
    ({'name': ''}, '"name" must be a non-empty one-line string'),
    ({'hint': 'two\nlines'}, '"hint" must be a non-empty one-line string'),
    ({'check': 'nowhere'}, '"check" must be the id of a code cell of this notebook, got \'nowhere\''),
    ({'check': 'data'}, "the check cell 'data' (cell 1) must be a code cell at or after"),
    ({'check': 'answer-check'}, "the check cell 'answer-check' starts with '# Answer check'"),
    ({'setup': ['check']}, "setup cell 'check' must be the id of a code cell before"),
    ({'setup': 'data'}, '"setup" must be a list of cell ids'),
    ({'setup': ['data', 'data']}, 'list the setup cells once each, in notebook order'),
    ({'hints': 'typo'}, "unknown keys ['hints']"),
    ({'mutants': {'name': 'x'}}, '"mutants" must be a list'),
    ({'mutants': [{'name': 'x'}]}, "mutant 0: expected the keys ['name', 'replace'], got ['name']"),
    ({'mutants': [{'name': 'x', 'replace': [['a']]}]}, "mutant 0 ('x'): \"replace\" must be a non-empty list"),
    ({'mutants': [{'name': 'x', 'replace': [['a', 'b']]}, {'name': 'x', 'replace': [['a', 'c']]}]},
     "mutant 1: the name 'x' is used twice"),
])
def test_malformed_metadata_is_reported_with_the_exercise_and_refused_by_the_generator(dOverride: dict,
                                                                                       message: str) -> None:
    oSolution = _SolutionNotebook(**dOverride)
    lProblems = CheckExerciseMetadata(oSolution, '01_Tiny.ipynb')
    assert len(lProblems) == 1 and message in lProblems[0], lProblems
    assert lProblems[0].startswith("01_Tiny.ipynb, cell 2 (id 'fill'), exercise ")
    with pytest.raises(MarkerError, match=re.escape(message)):
        _MakeExercise(oSolution)


def test_fill_cells_without_metadata_and_misplaced_metadata_are_reported() -> None:
    oSolution = _SolutionNotebook()
    oSolution.cells.append(_CodeCell(f'{FILL_START}\ny = 1\n{FILL_END}', 'bare'))
    oSolution.cells.append(_CodeCell('z = 2', 'no-fill', _ExerciseDict(name='Other', check='no-fill')))
    oSolution.cells.append(_CodeCell('w = 3', 'duplicate', _ExerciseDict(check='duplicate')))
    assert CheckExerciseMetadata(oSolution, 'nb') == [
        'nb, cell 5 (id \'bare\'): a fill cell without "exercise" metadata (name, hint, check, setup, mutants)',
        "nb, cell 6 (id 'no-fill'), exercise 'Other': exercise metadata on a cell without a fill block (put it on "
        'the code cell that holds the Fill This block)',
        "nb, cell 7 (id 'duplicate'), exercise 'MeanOf': exercise metadata on a cell without a fill block (put it on "
        'the code cell that holds the Fill This block)',
        "nb, cell 7 (id 'duplicate'), exercise 'MeanOf': two exercises named 'MeanOf' (the grader reports them by "
        'name)']
    assert ExerciseProblems(oSolution, 'nb') == CheckExerciseMetadata(oSolution, 'nb')[1:], \
        'the generator accepts a fill cell without metadata (a derived name, a generic hint)'


def test_bad_markers_are_a_metadata_problem_too() -> None:
    oSolution = _SolutionNotebook()
    oSolution.cells[2].source = oSolution.cells[2].source.replace(f'    {FILL_END}', '')
    assert CheckExerciseMetadata(oSolution, 'nb') == ['nb, cell 2: a Fill This block is never closed (missing end marker).']


@pytest.mark.parametrize('solutionPath', SOLUTION_NOTEBOOKS, ids=lambda p: p.name)
def test_the_lessons_exercise_metadata_present_is_well_formed(solutionPath: Path) -> None:
    lProblems = ExerciseProblems(nbformat.read(solutionPath, as_version=4), solutionPath.name)
    assert not lProblems, '\n'.join(lProblems)


@pytest.mark.skipif(not REQUIRE_EXERCISE_METADATA, reason='enabled once the lessons carry exercise metadata')
@pytest.mark.parametrize('solutionPath', SOLUTION_NOTEBOOKS, ids=lambda p: p.name)
def test_every_fill_cell_of_the_lessons_carries_exercise_metadata(solutionPath: Path) -> None:
    lProblems = CheckExerciseMetadata(nbformat.read(solutionPath, as_version=4), solutionPath.name)
    assert not lProblems, '\n'.join(lProblems)
