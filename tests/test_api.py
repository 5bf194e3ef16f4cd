"""One public API: every exported name exists and is listed in the README, lessons import from the package only,
and the student package holds no authoring code."""

from __future__ import annotations

import ast
import json
import re
from importlib.metadata import version
from pathlib import Path

import pytest

import course_utils

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = REPO_ROOT / 'course_utils'
SOLUTION_NOTEBOOKS = sorted((REPO_ROOT / 'notebooks').glob('[0-9][0-9]_*.ipynb'))


def _ReadmeApiTable() -> dict[str, set[str]]:
    """``{module: names}`` from the README's table of ``course_utils`` modules."""
    dTable: dict[str, set[str]] = {}
    for line in (REPO_ROOT / 'README.md').read_text(encoding='utf-8').splitlines():
        oMatch = re.match(r'^\| `course_utils\.(\w+)` \|(.*)\|\s*$', line)
        if oMatch:
            # Public names are PascalCase functions / classes or UPPER_CASE constants; `camelCase` are arguments
            dTable[oMatch[1]] = set(re.findall(r'`([A-Z]\w*)`', oMatch[2]))
    return dTable


def test_every_exported_name_exists_once() -> None:
    assert len(course_utils.__all__) == len(set(course_utils.__all__)), 'A name is listed twice in __all__'
    lMissing = [name for name in course_utils.__all__ if not hasattr(course_utils, name)]
    assert not lMissing, f'In __all__ but not importable from course_utils: {lMissing}'


def test_readme_table_lists_exactly_the_public_api() -> None:
    dTable = _ReadmeApiTable()
    setReadme = set().union(*dTable.values())
    setApi = set(course_utils.__all__)
    assert setApi - setReadme == set(), f'Exported but not in the README table: {sorted(setApi - setReadme)}'
    assert setReadme - setApi == set(), f'In the README table but not exported: {sorted(setReadme - setApi)}'
    # Each name sits in the row of the module that defines it
    for moduleName, setNames in dTable.items():
        for name in setNames:
            oObj = getattr(course_utils, name)
            # Constants (tuples, strings) carry no module: they are checked by name only
            definedIn = getattr(oObj, '__module__', None) if callable(oObj) else f'course_utils.{moduleName}'
            assert definedIn == f'course_utils.{moduleName}', f'{name} is listed under {moduleName}, defined in {definedIn}'


def test_every_package_module_is_in_the_readme_table() -> None:
    setModules = {p.stem for p in PACKAGE_DIR.glob('*.py') if not p.stem.startswith('_')}
    assert setModules == set(_ReadmeApiTable()), 'The README table and the modules of course_utils differ'


def test_version_comes_from_the_package_metadata() -> None:
    assert course_utils.__version__ == version('course-utils')


@pytest.mark.parametrize('notebookPath', SOLUTION_NOTEBOOKS, ids=lambda p: p.name)
def test_lessons_import_from_course_utils_only(notebookPath: Path) -> None:
    dNotebook = json.loads(notebookPath.read_text(encoding='utf-8'))
    for cellIdx, dCell in enumerate(dNotebook['cells']):
        if dCell['cell_type'] != 'code':
            continue
        source = ''.join(dCell['source'])
        assert not re.search(r'^\s*(from|import)\s+course_utils\.\w+', source, flags=re.M), \
            f'{notebookPath.name}, cell {cellIdx}: import from `course_utils`, not from one of its modules'


def test_the_student_package_holds_no_authoring_code() -> None:
    # The instructor tools live in tools/: they need the clone and write notebooks
    for modulePath in PACKAGE_DIR.glob('*.py'):
        oTree = ast.parse(modulePath.read_text(encoding='utf-8'))
        setImported = {alias.name.split('.')[0] for node in ast.walk(oTree) if isinstance(node, ast.Import)
                       for alias in node.names}
        setImported |= {(node.module or '').split('.')[0] for node in ast.walk(oTree) if isinstance(node, ast.ImportFrom)}
        assert not setImported & {'nbformat', 'nbclient', 'tools'}, f'{modulePath.name} imports authoring code'


def test_no_private_name_is_imported_across_modules() -> None:
    for modulePath in [*PACKAGE_DIR.glob('*.py'), *(REPO_ROOT / 'benchmarks').glob('*.py')]:
        oTree = ast.parse(modulePath.read_text(encoding='utf-8'))
        for node in ast.walk(oTree):
            if isinstance(node, ast.ImportFrom) and (node.module or '').split('.')[0] in {'course_utils', ''}:
                lPrivate = [alias.name for alias in node.names if alias.name.startswith('_')]
                assert not lPrivate, f'{modulePath.name} imports private names {lPrivate} from {node.module}'
