"""Honest dependencies: everything the notebooks and the package import is declared in pyproject.toml.

Colab's set-up cell installs `course_utils` alone (pip), so an undeclared import would only work by luck.
"""

from __future__ import annotations

import ast
import json
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.version import Version

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO_ROOT / 'notebooks').glob('[0-9][0-9]_*.ipynb'))
LOCAL_MODULES = {'course_utils'}


def _Normalize(distName: str) -> str:
    return re.sub(r'[-_.]+', '-', distName).lower()


def _DeclaredDistributions() -> set[str]:
    dProject = tomllib.loads((REPO_ROOT / 'pyproject.toml').read_text(encoding='utf-8'))['project']
    return {_Normalize(re.split(r'[<>=!~ \[;]', req, maxsplit=1)[0]) for req in dProject['dependencies']}


def _TopLevelImports(source: str) -> set[str]:
    # IPython magics and shell lines are not Python: drop them before parsing
    source = '\n'.join(line for line in source.splitlines() if not line.lstrip().startswith(('%', '!')))
    setNames = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            setNames |= {alias.name.split('.')[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            setNames.add(node.module.split('.')[0])
    return setNames


def _ThirdPartyImports(setNames: set[str]) -> set[str]:
    return {name for name in setNames if name not in sys.stdlib_module_names and name not in LOCAL_MODULES}


@cache
def _PackagesDistributions() -> dict[str, list[str]]:
    return packages_distributions()  #<! Scans every installed distribution: once per session


def _Undeclared(setModules: set[str]) -> dict[str, list[str]]:
    dModuleDists = _PackagesDistributions()
    setDeclared = _DeclaredDistributions()
    return {module: dModuleDists.get(module, ['<not installed>']) for module in sorted(setModules)
            if not {_Normalize(d) for d in dModuleDists.get(module, [])} & setDeclared}


@pytest.mark.parametrize('notebookPath', NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_import_is_declared(notebookPath: Path) -> None:
    dNotebook = json.loads(notebookPath.read_text(encoding='utf-8'))
    setNames = set().union(*(_TopLevelImports(''.join(dCell['source'])) for dCell in dNotebook['cells']
                             if dCell['cell_type'] == 'code'))
    dMissing = _Undeclared(_ThirdPartyImports(setNames) - {'google'})  #<! google.colab exists on Colab only
    assert not dMissing, f'{notebookPath.name} imports packages pyproject.toml does not declare: {dMissing}'


def test_every_package_import_is_declared() -> None:
    setNames = set().union(*(_TopLevelImports(p.read_text(encoding='utf-8'))
                             for p in (REPO_ROOT / 'course_utils').glob('*.py')))
    dMissing = _Undeclared(_ThirdPartyImports(setNames))
    assert not dMissing, f'course_utils imports packages pyproject.toml does not declare: {dMissing}'


def test_the_declared_lower_bounds_are_the_ones_tested() -> None:
    # `make test-oldest` installs constraints-oldest.txt: it must pin exactly the lower bound of every dependency
    dProject = tomllib.loads((REPO_ROOT / 'pyproject.toml').read_text(encoding='utf-8'))['project']
    dLower = {}
    for req in dProject['dependencies']:
        oMatch = re.fullmatch(r'([A-Za-z0-9_.\-]+)>=([0-9][0-9.]*)', req.replace(' ', ''))
        assert oMatch, f'{req!r}: state a lower bound only (name>=version), so that Colab keeps its own packages'
        dLower[_Normalize(oMatch[1])] = oMatch[2]
    dPinned = {}
    for line in (REPO_ROOT / 'constraints-oldest.txt').read_text(encoding='utf-8').splitlines():
        if line.strip() and not line.lstrip().startswith('#'):
            name, pinned = line.split('==')
            dPinned[_Normalize(name)] = pinned.strip()
    assert dPinned.keys() == dLower.keys()
    dPinned = {name: Version(pinned) for name, pinned in dPinned.items()}  #<! 1.13 == 1.13.0
    assert dPinned == {name: Version(lower) for name, lower in dLower.items()}, \
        'constraints-oldest.txt must pin exactly the lower bounds of pyproject.toml'
