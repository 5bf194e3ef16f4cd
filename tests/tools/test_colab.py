"""Colab: every notebook carries the badge and the set-up cell stamped from pyproject.toml."""

from __future__ import annotations

import shutil
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

from course_utils import GetDataRoot
from tools import colab
from tools.colab import BADGE_CELL_ID, SETUP_CELL_ID, ReadRepoLocation
from tools.notebook_io import REPO_ROOT, LessonNotebooks
ALL_NOTEBOOKS = sorted((REPO_ROOT / 'notebooks').rglob('[0-9][0-9]_*.ipynb'))


def test_notebooks_agree_with_the_repository_location() -> None:
    assert colab.main(['--check']) == 0, 'Run: make colab'


@pytest.mark.parametrize('notebookPath', ALL_NOTEBOOKS, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_badge_links_this_notebook_and_setup_installs_from_the_repository(notebookPath: Path) -> None:
    oLocation = ReadRepoLocation(REPO_ROOT / 'pyproject.toml')
    oNotebook = nbformat.read(notebookPath, as_version=4)
    assert oNotebook.cells[0].id == BADGE_CELL_ID
    relPath = notebookPath.relative_to(REPO_ROOT).as_posix()
    assert oLocation.ColabUrl(relPath) in oNotebook.cells[0].source
    oSetup = next(oCell for oCell in oNotebook.cells if oCell.get('id') == SETUP_CELL_ID)
    assert oLocation.gitUrl in oSetup.source
    assert '!' not in oSetup.source and 'wget' not in oSetup.source  #<! No shell magics, no loose file downloads


def test_a_changed_location_makes_the_check_fail(tmp_path: Path) -> None:
    shutil.copytree(REPO_ROOT / 'notebooks', tmp_path / 'notebooks')
    pyprojectText = (REPO_ROOT / 'pyproject.toml').read_text(encoding='utf-8')
    oLocation = ReadRepoLocation(REPO_ROOT / 'pyproject.toml')
    (tmp_path / 'pyproject.toml').write_text(pyprojectText.replace(f'{oLocation.owner}/{oLocation.name}', 'someone/fork'))
    assert colab.main(['--check', '--root', str(tmp_path)]) == 1
    assert colab.main(['--root', str(tmp_path)]) == 0
    assert colab.main(['--check', '--root', str(tmp_path)]) == 0
    assert 'someone/fork' in (LessonNotebooks(tmp_path / 'notebooks')[0]).read_text(encoding='utf-8')


def test_setup_cell_does_nothing_outside_colab(monkeypatch: pytest.MonkeyPatch) -> None:
    oSetup = next(oCell for oCell in nbformat.read(ALL_NOTEBOOKS[0], as_version=4).cells if oCell.get('id') == SETUP_CELL_ID)

    def FailRun(*args, **kwargs):
        raise AssertionError('pip must not run outside Colab')

    monkeypatch.delitem(sys.modules, 'google.colab', raising=False)
    monkeypatch.setattr(subprocess, 'run', FailRun)
    exec(oSetup.source, {})


def test_setup_cell_installs_course_utils_alone_on_colab(monkeypatch: pytest.MonkeyPatch) -> None:
    oSetup = next(oCell for oCell in nbformat.read(ALL_NOTEBOOKS[0], as_version=4).cells if oCell.get('id') == SETUP_CELL_ID)
    lCalls = []
    monkeypatch.setitem(sys.modules, 'google.colab', types.ModuleType('google.colab'))
    monkeypatch.setattr(subprocess, 'run', lambda lCmd, **kwargs: lCalls.append(lCmd))
    exec(oSetup.source, {})
    (lCmd,) = lCalls
    assert lCmd[1:4] == ['-m', 'pip', 'install'] and lCmd[-1].startswith('course-utils @ git+https://github.com/')
    assert not any(arg.startswith('torch') for arg in lCmd)  #<! Colab's torch is kept


def test_data_root_on_colab(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv('COURSE_DATA_DIR', raising=False)
    monkeypatch.setitem(sys.modules, 'google.colab', types.ModuleType('google.colab'))
    assert GetDataRoot() == Path('/content/datasets')


def test_a_malformed_repository_url_is_reported(tmp_path: Path) -> None:
    (tmp_path / 'pyproject.toml').write_text('[project.urls]\nRepository = "https://gitlab.com/x"\n')
    with pytest.raises(ValueError, match='OWNER/NAME'):
        ReadRepoLocation(tmp_path / 'pyproject.toml')
