"""Notebook reading, listing and writing shared by the instructor tools (``colab``, ``exercises``)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat import NotebookNode

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = REPO_ROOT / 'notebooks'
NOTEBOOK_VERSION = 4


def LessonNotebooks(notebooksDir: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The numbered solution notebooks (``NN_Name.ipynb``) in the notebooks folder."""
    return sorted(notebooksDir.glob('[0-9][0-9]_*.ipynb'))


def ReadNotebook(notebookFile: Path) -> NotebookNode:
    return nbformat.read(notebookFile, as_version=NOTEBOOK_VERSION)


def NotebookRelPath(notebookFile: Path, repoRoot: Path = REPO_ROOT) -> str:
    """The notebook's path relative to the repository root, with forward slashes (as in URLs)."""
    return notebookFile.resolve().relative_to(repoRoot.resolve()).as_posix()


def SyncNotebook(oNotebook: NotebookNode, notebookFile: Path, checkOnly: bool = False) -> bool:
    """Return whether ``notebookFile`` differs from ``oNotebook``; unless ``checkOnly``, write it when it does."""
    newText = nbformat.writes(oNotebook, version=NOTEBOOK_VERSION) + '\n'
    isStale = not notebookFile.is_file() or notebookFile.read_text(encoding='utf-8') != newText
    if isStale and not checkOnly:
        notebookFile.parent.mkdir(parents=True, exist_ok=True)
        notebookFile.write_text(newText, encoding='utf-8')
    return isStale
