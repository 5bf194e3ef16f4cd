"""Colab: every notebook carries the badge, the set-up cell and (lessons 03+) the GPU runtime stamped by tools.colab."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
import torch

from course_utils import GetDataRoot
from tools import colab
from tools.colab import (BADGE_CELL_ID, GPU_HINT, SETUP_CELL_ID, ColabMetadataProblems, LessonNumber, NeedsGpu,
                         ReadRepoLocation, SetupCell, StampNotebook)
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
    assert (GPU_HINT in oSetup.source) == NeedsGpu(relPath)


@pytest.mark.parametrize('notebookPath', ALL_NOTEBOOKS, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_training_lessons_open_a_gpu_runtime_on_colab(notebookPath: Path) -> None:
    oNotebook = nbformat.read(notebookPath, as_version=4)
    isGpuLesson = int(notebookPath.name[:2]) >= 3
    assert ColabMetadataProblems(oNotebook, isGpuLesson) == [], 'Run: make colab'
    assert (oNotebook.metadata.get('accelerator') == 'GPU') == isGpuLesson
    assert oNotebook.metadata['kernelspec']['name'] == 'python3'  #<! Stamping keeps the other metadata


def test_gpu_lessons_are_the_numbers_3_and_up() -> None:
    lNames = [f'notebooks/{ii:02d}_Lesson.ipynb' for ii in range(1, 12)]
    assert [NeedsGpu(name) for name in lNames] == [False, False] + [True] * 9
    assert LessonNumber('notebooks/exercises/07_Architectures.ipynb') == 7
    with pytest.raises(ValueError, match='NN_Name.ipynb'):
        LessonNumber('notebooks/Scratch.ipynb')


def _InMemoryNotebook(dMeta: dict) -> nbformat.NotebookNode:
    oNotebook = nbformat.v4.new_notebook(metadata=dMeta)
    oNotebook.cells = [nbformat.v4.new_code_cell('x = 1')]
    return oNotebook


def test_stamping_sets_the_gpu_runtime_and_keeps_other_metadata() -> None:
    oLocation = ReadRepoLocation(REPO_ROOT / 'pyproject.toml')
    dKernel = {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}
    oNotebook = _InMemoryNotebook({'kernelspec': dKernel, 'colab': {'provenance': []}})
    assert ColabMetadataProblems(oNotebook, True) == ['metadata "accelerator" is None, expected \'GPU\'',
                                                      'metadata "colab.gpuType" is None, expected \'T4\'']
    oNotebook = StampNotebook(oNotebook, oLocation, 'notebooks/04_X.ipynb')
    assert oNotebook.metadata == {'kernelspec': dKernel, 'accelerator': 'GPU',
                                  'colab': {'provenance': [], 'gpuType': 'T4'}}
    assert ColabMetadataProblems(oNotebook, True) == []
    nbformat.validate(oNotebook)


def test_stamping_removes_the_gpu_runtime_below_lesson_3() -> None:
    oLocation = ReadRepoLocation(REPO_ROOT / 'pyproject.toml')
    dKernel = {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}
    oNotebook = _InMemoryNotebook({'kernelspec': dKernel, 'accelerator': 'GPU', 'colab': {'gpuType': 'T4'}})
    assert ColabMetadataProblems(oNotebook, False) != []
    oNotebook = StampNotebook(oNotebook, oLocation, 'notebooks/02_X.ipynb')
    assert oNotebook.metadata == {'kernelspec': dKernel}
    assert ColabMetadataProblems(oNotebook, False) == []
    oNotebook.metadata['colab'] = {'gpuType': 'T4', 'provenance': []}
    assert StampNotebook(oNotebook, oLocation, 'notebooks/01_X.ipynb').metadata['colab'] == {'provenance': []}


@pytest.mark.parametrize('dBreak', [{'accelerator': None}, {'accelerator': 'TPU'}, {'gpuType': None}, {'gpuType': 'A100'}],
                         ids=lambda d: '-'.join(f'{k}={v}' for k, v in d.items()))
def test_missing_or_wrong_gpu_runtime_fails_the_check(tmp_path: Path, dBreak: dict,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(REPO_ROOT / 'notebooks', tmp_path / 'notebooks')
    shutil.copy(REPO_ROOT / 'pyproject.toml', tmp_path / 'pyproject.toml')
    assert colab.main(['--root', str(tmp_path)]) == 0
    assert colab.main(['--check', '--root', str(tmp_path)]) == 0
    notebookFile = next(p for p in LessonNotebooks(tmp_path / 'notebooks') if p.name.startswith('05_'))
    oNotebook = nbformat.read(notebookFile, as_version=4)
    (key, val), = dBreak.items()
    dTarget = oNotebook.metadata if key == 'accelerator' else oNotebook.metadata['colab']
    if val is None:
        del dTarget[key]
    else:
        dTarget[key] = val
    nbformat.write(oNotebook, notebookFile)
    capsys.readouterr()
    assert colab.main(['--check', '--root', str(tmp_path)]) == 1
    assert f'notebooks/{notebookFile.name}: metadata' in capsys.readouterr().out
    assert colab.main(['--root', str(tmp_path)]) == 0
    assert colab.main(['--check', '--root', str(tmp_path)]) == 0


def test_gpu_runtime_in_a_cpu_lesson_fails_the_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(REPO_ROOT / 'notebooks', tmp_path / 'notebooks')
    shutil.copy(REPO_ROOT / 'pyproject.toml', tmp_path / 'pyproject.toml')
    assert colab.main(['--root', str(tmp_path)]) == 0
    notebookFile = LessonNotebooks(tmp_path / 'notebooks')[0]
    oNotebook = nbformat.read(notebookFile, as_version=4)
    oNotebook.metadata['accelerator'] = 'GPU'
    nbformat.write(oNotebook, notebookFile)
    capsys.readouterr()
    assert colab.main(['--check', '--root', str(tmp_path)]) == 1
    assert 'GPU runtime metadata' in capsys.readouterr().out


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


@pytest.mark.parametrize('needsGpu', [False, True])
def test_setup_cell_is_python_and_hints_at_a_gpu_in_gpu_lessons_only(needsGpu: bool) -> None:
    source = SetupCell(ReadRepoLocation(REPO_ROOT / 'pyproject.toml'), needsGpu).source
    ast.parse(source)  #<! Plain Python: no shell magics
    assert ('Runtime > Change runtime type > T4 GPU' in source) == needsGpu


def test_gpu_setup_cell_does_nothing_outside_colab(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    def FailRun(*args, **kwargs):
        raise AssertionError('pip must not run outside Colab')

    monkeypatch.delitem(sys.modules, 'google.colab', raising=False)
    monkeypatch.setattr(subprocess, 'run', FailRun)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    exec(SetupCell(ReadRepoLocation(REPO_ROOT / 'pyproject.toml'), needsGpu=True).source, {})
    assert capsys.readouterr().out == ''


@pytest.mark.parametrize('hasCuda', [False, True])
def test_gpu_setup_cell_on_colab_says_how_to_get_a_gpu(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str], hasCuda: bool) -> None:
    lCalls = []
    monkeypatch.setitem(sys.modules, 'google.colab', types.ModuleType('google.colab'))
    monkeypatch.setattr(subprocess, 'run', lambda lCmd, **kwargs: lCalls.append(lCmd))
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: hasCuda)
    exec(SetupCell(ReadRepoLocation(REPO_ROOT / 'pyproject.toml'), needsGpu=True).source, {})
    assert len(lCalls) == 1  #<! course_utils still installed
    out = capsys.readouterr().out
    assert ('Runtime > Change runtime type > T4 GPU' in out) == (not hasCuda)
    assert out == '' or out.count('\n') == 1  #<! One short line


def test_data_root_on_colab(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv('COURSE_DATA_DIR', raising=False)
    monkeypatch.setitem(sys.modules, 'google.colab', types.ModuleType('google.colab'))
    assert GetDataRoot() == Path('/content/datasets')


def test_a_malformed_repository_url_is_reported(tmp_path: Path) -> None:
    (tmp_path / 'pyproject.toml').write_text('[project.urls]\nRepository = "https://gitlab.com/x"\n')
    with pytest.raises(ValueError, match='OWNER/NAME'):
        ReadRepoLocation(tmp_path / 'pyproject.toml')
