"""Shared fixtures: a tiny CIFAR-10-shaped class-folder tree whose pixels encode the label."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image

matplotlib.use('Agg')  #<! Tests never open windows

from course_utils.data import CIFAR10_CLASSES, FOLDER_LAYOUT_DIR  # noqa: E402

NUM_PER_CLASS = {'train': 6, 'test': 2}


def ClassColor(clsIdx: int) -> tuple[int, int, int]:
    """A distinct RGB color per class, so a label can be checked from the pixels alone."""
    return (20 * clsIdx + 5, 255 - 20 * clsIdx, (97 * clsIdx) % 256)


def MakeFolderTree(dataRoot: Path, numPerClass: dict[str, int] = NUM_PER_CLASS) -> Path:
    """Write ``<dataRoot>/cifar-10-images/{train,test}/<class>/NNNN.png`` (lossless, so pixels are exact)."""
    for split, numImg in numPerClass.items():
        for clsIdx, clsName in enumerate(CIFAR10_CLASSES):
            clsDir = dataRoot / FOLDER_LAYOUT_DIR / split / clsName
            clsDir.mkdir(parents=True)
            for ii in range(numImg):
                mI = np.full((32, 32, 3), ClassColor(clsIdx), dtype=np.uint8)
                mI[0, 0] = (ii, ii, ii)  #<! Encodes the file index: checks the order within a class
                Image.fromarray(mI).save(clsDir / f'{ii:04d}.png')
    return dataRoot


@pytest.fixture
def folderRoot(tmp_path: Path) -> Path:
    return MakeFolderTree(tmp_path / 'data')


@pytest.fixture(autouse=True)
def isolatedCache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own decoded-array cache, so tests never see each other's files."""
    cacheDir = tmp_path / 'cache'
    monkeypatch.setenv('COURSE_CACHE_DIR', str(cacheDir))
    return cacheDir


def SharedCifarRoot() -> Path | None:
    """The real CIFAR-10 data root when the environment provides one (CI does), else ``None``."""
    envValue = os.environ.get('COURSE_DATA_DIR', '')
    if envValue and (Path(envValue) / FOLDER_LAYOUT_DIR / 'train').is_dir():
        return Path(envValue)
    return None


_USER_CACHE_DIR = os.environ.get('COURSE_CACHE_DIR', '')  #<! Read before any test replaces it


@pytest.fixture
def sharedCifarRoot(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The real CIFAR-10 root, read with the user's cache (decoding 60,000 images once is enough)."""
    dataRoot = SharedCifarRoot()
    if dataRoot is None:
        pytest.skip('Real CIFAR-10 not available: set COURSE_DATA_DIR to a folder with cifar-10-images/.')
    if _USER_CACHE_DIR:
        monkeypatch.setenv('COURSE_CACHE_DIR', _USER_CACHE_DIR)
    else:
        monkeypatch.delenv('COURSE_CACHE_DIR')
    return dataRoot


@pytest.hookimpl(tryfirst=True)  #<! Before xdist's own hook, which reads the group marks to build the node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (CI runs ``-n 2 --dist loadgroup``), the lessons run one after the other on one worker:
    they share ``notebooks/`` as their working folder (``checkpoints/BestModel.pt``, ``runs/``), so two at once could
    read each other's checkpoint. The unit and tool tests share the other worker. Without xdist the mark does nothing.
    """
    lessonsDir = Path(__file__).resolve().parent.parent / 'notebooks'
    for oItem in items:
        itemPath = Path(str(oItem.path)).resolve()
        if itemPath.suffix == '.ipynb' and itemPath.parent == lessonsDir:
            oItem.add_marker(pytest.mark.xdist_group('lessons'))
