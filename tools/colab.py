"""One-click Colab: stamp every notebook with an "Open in Colab" badge, a Colab-only set-up cell and its runtime.

The repository's location is written in one place, ``pyproject.toml``:
``[project.urls] Repository`` (``https://github.com/OWNER/NAME``) and ``[tool.course_utils] colab-ref``
(the branch or tag that Colab installs from). Run after changing either, or after adding a notebook::

    python -m tools.colab          # stamp the notebooks
    python -m tools.colab --check  # exit 1 if any notebook disagrees (CI)

GPU lessons: a notebook whose number (the ``NN`` of ``NN_Name.ipynb``) is ``GPU_FROM_LESSON`` (3) or more trains
networks. It gets Colab's runtime metadata (``"accelerator": "GPU"`` and ``"colab": {"gpuType": "T4"}``), so the
badge opens a GPU runtime, and its set-up cell prints how to switch to a GPU when Colab gave it none. Lessons below
3 run on a CPU: they carry no accelerator metadata (a stale one is removed). Other metadata keys are kept.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import nbformat
from nbformat import NotebookNode

from tools.notebook_io import REPO_ROOT, LessonNotebooks, NotebookRelPath, ReadNotebook, SyncNotebook

BADGE_CELL_ID = 'colab-badge'
SETUP_CELL_ID = 'colab-setup'
GPU_FROM_LESSON = 3  #<! Lessons 03+ train networks: they open a GPU runtime on Colab
COLAB_ACCELERATOR = 'GPU'
COLAB_GPU_TYPE = 'T4'  #<! The GPU of Colab's free tier
GPU_HINT = 'Runtime > Change runtime type > T4 GPU'


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


def LessonNumber(notebookPath: str) -> int:
    """The lesson number ``NN`` of a notebook named ``NN_Name.ipynb`` (any folder)."""
    oMatch = re.fullmatch(r'(\d\d)_.+\.ipynb', PurePosixPath(notebookPath).name)
    if oMatch is None:
        raise ValueError(f'{notebookPath}: lesson notebooks are named NN_Name.ipynb (NN the two-digit lesson number).')
    return int(oMatch[1])


def NeedsGpu(notebookPath: str) -> bool:
    """Whether the lesson trains networks and so opens a GPU runtime on Colab (lessons ``GPU_FROM_LESSON``+)."""
    return LessonNumber(notebookPath) >= GPU_FROM_LESSON


def StampColabMetadata(oNotebook: NotebookNode, needsGpu: bool) -> NotebookNode:
    """Set (``needsGpu``) or remove Colab's GPU runtime metadata; every other metadata key is kept."""
    dMeta = oNotebook.metadata
    dColab = dict(dMeta.get('colab', {}))
    if needsGpu:
        dMeta['accelerator'] = COLAB_ACCELERATOR
        dColab['gpuType'] = COLAB_GPU_TYPE
    else:
        dMeta.pop('accelerator', None)
        dColab.pop('gpuType', None)
    if dColab:
        dMeta['colab'] = dColab
    else:
        dMeta.pop('colab', None)
    return oNotebook


def ColabMetadataProblems(oNotebook: NotebookNode, needsGpu: bool) -> list[str]:
    """What is wrong with the notebook's Colab runtime metadata (empty when it is right)."""
    accelerator = oNotebook.metadata.get('accelerator')
    gpuType = oNotebook.metadata.get('colab', {}).get('gpuType')
    if not needsGpu:
        if accelerator is None and gpuType is None:
            return []
        return [f'GPU runtime metadata (accelerator={accelerator!r}, colab.gpuType={gpuType!r}) in a lesson below '
                f'{GPU_FROM_LESSON:02d}, which runs on a CPU']
    lProblems = []
    if accelerator != COLAB_ACCELERATOR:
        lProblems.append(f'metadata "accelerator" is {accelerator!r}, expected {COLAB_ACCELERATOR!r}')
    if gpuType != COLAB_GPU_TYPE:
        lProblems.append(f'metadata "colab.gpuType" is {gpuType!r}, expected {COLAB_GPU_TYPE!r}')
    return lProblems


def SetupCell(oLocation: RepoLocation, needsGpu: bool = False) -> NotebookNode:
    # Plain Python (no shell magics): works the same everywhere; outside Colab it does nothing
    source = (
        '# Set-up on Google Colab: installs course_utils (Colab keeps its own PyTorch). Does nothing elsewhere.\n'
        'import subprocess, sys\n'
        "if 'google.colab' in sys.modules:\n"
        "    subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet',\n"
        f"                    'course-utils @ {oLocation.gitUrl}'], check=True)")
    if needsGpu:
        # After the install: torch is imported once the packages it may load are in place
        source += (
            '\n    import torch\n'
            '    if not torch.cuda.is_available():\n'
            f"        print('No GPU in this runtime. Switch with {GPU_HINT}, then run again.')")
    oCell = nbformat.v4.new_code_cell(source)
    oCell['id'] = SETUP_CELL_ID
    return oCell


def StampNotebook(oNotebook: NotebookNode, oLocation: RepoLocation, notebookPath: str) -> NotebookNode:
    """Return the notebook with the badge as its first cell and the set-up cell second (replacing old ones), and
    Colab's GPU runtime metadata set in GPU lessons (removed in the others)."""
    needsGpu = NeedsGpu(notebookPath)
    lCells = [oCell for oCell in oNotebook.cells if oCell.get('id') not in {BADGE_CELL_ID, SETUP_CELL_ID}]
    oNotebook.cells = [BadgeCell(oLocation, notebookPath), SetupCell(oLocation, needsGpu), *lCells]
    return StampColabMetadata(oNotebook, needsGpu)


def main(lArgs: list[str] | None = None) -> int:
    oParser = argparse.ArgumentParser(prog='python -m tools.colab', description=__doc__.splitlines()[0])
    oParser.add_argument('--check', action='store_true', help='only check; exit 1 if a notebook would change')
    oParser.add_argument('--root', type=Path, default=REPO_ROOT, help='repository root (default: this clone)')
    oArgs = oParser.parse_args(lArgs)
    oLocation = ReadRepoLocation(oArgs.root / 'pyproject.toml')
    lStale = []
    for notebookFile in LessonNotebooks(oArgs.root / 'notebooks'):
        relPath = NotebookRelPath(notebookFile, oArgs.root)
        oNotebook = ReadNotebook(notebookFile)
        lProblems = ColabMetadataProblems(oNotebook, NeedsGpu(relPath))  #<! Before stamping (which fixes them)
        oStamped = StampNotebook(oNotebook, oLocation, relPath)
        if SyncNotebook(oStamped, notebookFile, checkOnly=oArgs.check):
            if oArgs.check:
                lStale.append(notebookFile.name)
                for problem in lProblems:
                    print(f'{relPath}: {problem}')
            else:
                print(f'Stamped {relPath}')
    if lStale:
        print(f'Colab badge / set-up cell / runtime metadata out of date in: {", ".join(lStale)}. '
              'Run: python -m tools.colab')
        return 1
    print(f'Colab cells point at {oLocation.owner}/{oLocation.name}@{oLocation.ref}.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
