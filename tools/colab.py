"""One-click Colab: stamp every notebook with an "Open in Colab" badge and a Colab-only set-up cell.

The repository's location is written in one place, ``pyproject.toml``:
``[project.urls] Repository`` (``https://github.com/OWNER/NAME``) and ``[tool.course_utils] colab-ref``
(the branch or tag that Colab installs from). Run after changing either, or after adding a notebook::

    python -m tools.colab          # stamp the notebooks
    python -m tools.colab --check  # exit 1 if any notebook disagrees (CI)
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from tools.notebook_io import REPO_ROOT, LessonNotebooks, NotebookRelPath, ReadNotebook, SyncNotebook

BADGE_CELL_ID = 'colab-badge'
SETUP_CELL_ID = 'colab-setup'


@dataclass(frozen=True)
class RepoLocation:
    """Where the course lives on GitHub, and which branch or tag Colab installs."""

    owner: str
    name: str
    ref: str

    @property
    def gitUrl(self) -> str:
        return f'git+https://github.com/{self.owner}/{self.name}@{self.ref}'

    def ColabUrl(self, notebookPath: str) -> str:
        return f'https://colab.research.google.com/github/{self.owner}/{self.name}/blob/{self.ref}/{notebookPath}'


def ReadRepoLocation(pyprojectPath: Path = REPO_ROOT / 'pyproject.toml') -> RepoLocation:
    """Read the repository (``[project.urls] Repository``) and ref (``[tool.course_utils] colab-ref``)."""
    if not pyprojectPath.is_file():
        raise FileNotFoundError(f'{pyprojectPath} not found: run this command in a clone of the course repository.')
    dProject = tomllib.loads(pyprojectPath.read_text(encoding='utf-8'))
    repoUrl = dProject.get('project', {}).get('urls', {}).get('Repository', '')
    prefix = 'https://github.com/'
    lParts = repoUrl.removeprefix(prefix).strip('/').split('/')
    if not repoUrl.startswith(prefix) or len(lParts) != 2 or not all(lParts):
        raise ValueError(f'{pyprojectPath}: [project.urls] Repository must be https://github.com/OWNER/NAME, '
                         f'got {repoUrl!r}.')
    ref = dProject.get('tool', {}).get('course_utils', {}).get('colab-ref', '')
    if not ref:
        raise ValueError(f'{pyprojectPath}: set [tool.course_utils] colab-ref to the branch or tag Colab installs.')
    return RepoLocation(owner=lParts[0], name=lParts[1].removesuffix('.git'), ref=ref)


def BadgeCell(oLocation: RepoLocation, notebookPath: str) -> NotebookNode:
    oCell = nbformat.v4.new_markdown_cell(
        f'[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]'
        f'({oLocation.ColabUrl(notebookPath)})')
    oCell['id'] = BADGE_CELL_ID
    return oCell


def SetupCell(oLocation: RepoLocation) -> NotebookNode:
    # Plain Python (no shell magics): works the same everywhere; outside Colab it does nothing
    oCell = nbformat.v4.new_code_cell(
        '# Set-up on Google Colab: installs course_utils (Colab keeps its own PyTorch). Does nothing elsewhere.\n'
        'import subprocess, sys\n'
        "if 'google.colab' in sys.modules:\n"
        "    subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet',\n"
        f"                    'course-utils @ {oLocation.gitUrl}'], check=True)")
    oCell['id'] = SETUP_CELL_ID
    return oCell


def StampNotebook(oNotebook: NotebookNode, oLocation: RepoLocation, notebookPath: str) -> NotebookNode:
    """Return the notebook with the badge as its first cell and the set-up cell second (replacing old ones)."""
    lCells = [oCell for oCell in oNotebook.cells if oCell.get('id') not in {BADGE_CELL_ID, SETUP_CELL_ID}]
    oNotebook.cells = [BadgeCell(oLocation, notebookPath), SetupCell(oLocation), *lCells]
    return oNotebook


def main(lArgs: list[str] | None = None) -> int:
    oParser = argparse.ArgumentParser(prog='python -m tools.colab', description=__doc__.splitlines()[0])
    oParser.add_argument('--check', action='store_true', help='only check; exit 1 if a notebook would change')
    oParser.add_argument('--root', type=Path, default=REPO_ROOT, help='repository root (default: this clone)')
    oArgs = oParser.parse_args(lArgs)
    oLocation = ReadRepoLocation(oArgs.root / 'pyproject.toml')
    lStale = []
    for notebookFile in LessonNotebooks(oArgs.root / 'notebooks'):
        oNotebook = ReadNotebook(notebookFile)
        oStamped = StampNotebook(oNotebook, oLocation, NotebookRelPath(notebookFile, oArgs.root))
        if SyncNotebook(oStamped, notebookFile, checkOnly=oArgs.check):
            if oArgs.check:
                lStale.append(notebookFile.name)
            else:
                print(f'Stamped {NotebookRelPath(notebookFile, oArgs.root)}')
    if lStale:
        print(f'Colab badge / set-up cell out of date in: {", ".join(lStale)}. Run: python -m tools.colab')
        return 1
    print(f'Colab cells point at {oLocation.owner}/{oLocation.name}@{oLocation.ref}.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
