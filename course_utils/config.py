"""Where the course finds its data, whether it runs in quick mode, and which device it uses.

Everything a notebook may want to change without editing code is an environment
variable, because Jupyter kernels (and nbmake) inherit the environment:

- ``COURSE_DATA_DIR``: the data root (default: the repository's ``datasets/`` folder).
- ``COURSE_CACHE_DIR``: where decoded image arrays are cached (default: ``~/.cache/course_utils``).
- ``COURSE_QUICK``: ``1`` / ``true`` runs the notebooks on small subsets with few epochs (CI).
- ``COURSE_SCALE``: ``quick``, ``cpu`` or ``accelerator``: the size of a lesson's experiments (default: ``quick``
  with ``COURSE_QUICK``, else ``accelerator`` on CUDA / MPS and ``cpu`` on a CPU). See ``GetScale``.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
from pathlib import Path

from typing import NamedTuple

import torch

DATA_DIR_ENV = 'COURSE_DATA_DIR'
CACHE_DIR_ENV = 'COURSE_CACHE_DIR'
QUICK_MODE_ENV = 'COURSE_QUICK'
SCALE_ENV = 'COURSE_SCALE'
SCALES = ('quick', 'cpu', 'accelerator')  #<! CI's tiny budget; at most 45 min on 2 cores; what a GPU deserves
# What every lesson prints in quick mode: its numbers then come from a budget too small to carry the lesson's claims
QUICK_MODE_NOTE = ('Quick mode: every number below comes from a tiny budget (small subsets, a few epochs), so it '
                   'may contradict the text around it. Leave COURSE_QUICK unset for the lesson\'s own results.')

_TRUE_WORDS = {'1', 'true', 'yes', 'on'}
_FALSE_WORDS = {'', '0', 'false', 'no', 'off'}


COLAB_DATA_ROOT = Path('/content/datasets')


def IsColab() -> bool:
    """Return ``True`` inside a Google Colab runtime."""
    return 'google.colab' in sys.modules


def CanReach(hostName: str, port: int = 443, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``hostName`` opens within ``timeout`` seconds (no network: ``False`` fast)."""
    try:
        with socket.create_connection((hostName, port), timeout=timeout):
            return True
    except OSError:
        return False


def MissingDataError(problem: str, downloadNote: str, onlineWay: str, offlineWay: str,
                     heldFolder: str = 'it') -> FileNotFoundError:
    """The error every loader raises when it has neither a local copy nor a download: it names both ways.

    ``problem`` says what is missing where, ``downloadNote`` why no download happened, ``onlineWay`` /
    ``offlineWay`` how to provide the data with / without internet, ``heldFolder`` what the data root must hold.
    """
    return FileNotFoundError(
        f'{problem} {downloadNote}\n'
        f'Provide the data in one of two ways:\n'
        f'  1. With internet access: {onlineWay}\n'
        f'  2. Offline: {offlineWay}\n'
        f'Either way, set the environment variable {DATA_DIR_ENV} (or pass dataRoot=...) to the folder that holds '
        f'{heldFolder}.')


def CorruptDataError(filePath: Path | str, problem: str, fix: str) -> ValueError:
    """The error every loader raises for a data file it cannot use: it names the file, what is wrong with it and how
    to get a good copy (a truncated download, a file of another data set, a mask that does not fit its image)."""
    return ValueError(f'{filePath}: {problem}.\nTo fix it: {fix}')


def _RepositoryDatasetsDir() -> Path:
    # `course_utils/` sits next to `datasets/` in the repository (editable install).
    return Path(__file__).resolve().parent.parent / 'datasets'


def GetDataRoot() -> Path:
    """Return the data root: ``$COURSE_DATA_DIR``, else the repository's ``datasets/`` folder.

    On Google Colab the default is ``/content/datasets``. When ``course_utils`` was installed without the
    repository (``pip install git+...``) elsewhere, it is ``~/datasets/course_utils`` (created by downloads).
    """
    envValue = os.environ.get(DATA_DIR_ENV, '').strip()
    if envValue:
        return Path(envValue).expanduser().resolve()
    if IsColab():
        return COLAB_DATA_ROOT  #<! Local disk of the Colab machine: fast, and writable for the download
    repoDir = _RepositoryDatasetsDir()
    # Only inside the course's own clone: next to an installed package, `datasets/` may be another package
    if repoDir.is_dir() and (repoDir.parent / 'pyproject.toml').is_file():
        return repoDir
    return Path.home() / 'datasets' / 'course_utils'


def GetCacheDir() -> Path:
    """Return the folder for decoded-array caches (``$COURSE_CACHE_DIR`` or ``~/.cache/course_utils``).

    The cache never lives inside the data root: that folder may be read-only (shared copies).
    """
    envValue = os.environ.get(CACHE_DIR_ENV, '').strip()
    if envValue:
        return Path(envValue).expanduser().resolve()
    xdgCache = os.environ.get('XDG_CACHE_HOME', '').strip()
    baseDir = Path(xdgCache) if xdgCache else Path.home() / '.cache'
    return baseDir / 'course_utils'


def _QuickFlag() -> bool:
    valRaw = os.environ.get(QUICK_MODE_ENV, '')
    valNorm = valRaw.strip().lower()
    if valNorm in _TRUE_WORDS:
        return True
    if valNorm in _FALSE_WORDS:
        return False
    raise ValueError(
        f'{QUICK_MODE_ENV}={valRaw!r} is not understood: use 1/true/yes/on for quick mode, '
        f'0/false/no/off (or leave it unset) for the full lesson.'
    )


def GetScale(device: torch.device | str | None = None) -> str:
    """Return the scale of a lesson's experiments: ``'quick'``, ``'cpu'`` or ``'accelerator'``.

    - ``'quick'`` (``COURSE_QUICK=1``, CI): small subsets and few epochs, minutes per lesson.
    - ``'cpu'``: the full lesson within about 45 minutes on 2 CPU cores.
    - ``'accelerator'``: the full lesson at the size its subject deserves (whole splits, paper widths), on CUDA / MPS.

    ``$COURSE_SCALE`` chooses it; otherwise quick mode, else by ``device`` (default ``GetDevice()``): CUDA and MPS
    get ``'accelerator'``, a CPU ``'cpu'``. Raises ``ValueError`` for an unknown scale, or for ``COURSE_QUICK=1`` with
    another ``COURSE_SCALE`` (the two would disagree).
    """
    isQuick = _QuickFlag()
    valRaw = os.environ.get(SCALE_ENV, '')
    valScale = valRaw.strip().lower()
    if valScale:
        if valScale not in SCALES:
            raise ValueError(f'{SCALE_ENV}={valRaw!r} is not understood: use one of {", ".join(SCALES)} '
                             f'(or leave it unset to choose by the device).')
        if isQuick and valScale != 'quick':
            raise ValueError(f'{QUICK_MODE_ENV} asks for quick mode but {SCALE_ENV}={valRaw!r}: unset one of them.')
        return valScale
    if isQuick:
        return 'quick'
    deviceType = torch.device(device).type if device is not None else GetDevice().type
    return 'accelerator' if deviceType in {'cuda', 'mps'} else 'cpu'


def IsQuickMode() -> bool:
    """Return ``True`` when ``$COURSE_QUICK`` (or ``COURSE_SCALE=quick``) asks for quick mode (small subsets, few
    epochs).

    Raises ``ValueError`` for a value that is neither true-like nor false-like, rather than
    silently guessing what the user meant.
    """
    if _QuickFlag():
        return True
    return os.environ.get(SCALE_ENV, '').strip().lower() == 'quick'


def GetDevice() -> torch.device:
    """Return the best available device: CUDA, then Apple MPS, then CPU."""
    if torch.cuda.is_available():
        return torch.device('cuda')
    if torch.backends.mps.is_available():
        return torch.device('mps')
    return torch.device('cpu')


def ModelDevice(oModel: torch.nn.Module) -> torch.device:
    """Device of the model's first parameter (or buffer); CPU for a model with neither."""
    for tParam in (*oModel.parameters(), *oModel.buffers()):
        return tParam.device
    return torch.device('cpu')


def SyncDevice(device: torch.device | str) -> None:
    """Wait for the work queued on ``device``: CUDA and MPS kernels run asynchronously, so a timer read before this
    would stop before the work it times. Nothing to wait for on the CPU."""
    oDevice = torch.device(device)
    if oDevice.type == 'cuda':
        torch.cuda.synchronize(oDevice)
    elif oDevice.type == 'mps':
        torch.mps.synchronize()


def CpuHasNativeBf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512_BF16 / AMX-BF16 on x86, BF16 on ARM).

    Elsewhere PyTorch emulates bfloat16 in software, 12-15x slower than float32 (measured on the course's CPU).
    """
    cpuCapability = torch.backends.cpu.get_cpu_capability()  #<! The vector instructions of PyTorch's CPU kernels
    dFeatures = torch.cpu.get_capabilities() if hasattr(torch.cpu, 'get_capabilities') else {}  #<! Newer PyTorch
    if cpuCapability == 'AVX512':
        # Both x86 extensions come only with AVX-512; without the feature list they cannot be told apart
        return bool(dFeatures.get('avx512_bf16') or dFeatures.get('amx_bf16')) if dFeatures else True
    return bool(dFeatures.get('bf16') or dFeatures.get('sve_bf16'))  #<! ARM; False on x86 without AVX-512


class MixedPrecision(NamedTuple):
    """What ``ChooseMixedPrecision`` picked: the autocast dtype (``None``: float32), whether float16 needs a
    ``GradScaler``, and why, in words."""

    autocastDtype: torch.dtype | None
    useGradScaler: bool
    reason: str


def ChooseMixedPrecision(device: torch.device | str) -> MixedPrecision:
    """The mixed precision worth trying on ``device``, chosen by capability, never by emulation.

    - CUDA with compute capability 8.0 or newer (A100, RTX 30xx, L4, H100): bfloat16, no scaler.
    - CUDA below 8.0 (T4 7.5, V100 7.0): float16 with a ``GradScaler``. ``torch.cuda.is_bf16_supported()`` is
      ``True`` on a T4 because it counts emulation; bfloat16 convolutions there are slower than float32.
    - CPU: bfloat16 only with native bf16 (``CpuHasNativeBf16``), else float32.
    - Apple MPS and other devices: float32.
    """
    oDevice = torch.device(device)
    if oDevice.type == 'cuda':
        tuCapability = torch.cuda.get_device_capability(oDevice)
        if tuCapability >= (8, 0):
            return MixedPrecision(torch.bfloat16, False,
                                  f'CUDA compute capability {tuCapability[0]}.{tuCapability[1]} (>= 8.0): bfloat16')
        return MixedPrecision(torch.float16, True,
                              f'CUDA compute capability {tuCapability[0]}.{tuCapability[1]} (< 8.0, no native '
                              f'bfloat16): float16 with a GradScaler')
    if oDevice.type == 'cpu':
        cpuCapability = torch.backends.cpu.get_cpu_capability()
        if CpuHasNativeBf16():
            return MixedPrecision(torch.bfloat16, False, f'CPU ({cpuCapability}) with native bfloat16: bfloat16')
        return MixedPrecision(None, False, f'CPU ({cpuCapability}) without native bfloat16 (AVX512_BF16 / AMX-BF16 '
                                           f'or ARM BF16): bfloat16 would be emulated, many times slower; float32')
    return MixedPrecision(None, False, f'{oDevice.type}: float32 (mixed precision is not used there)')


def GetNumWorkers(device: torch.device | str | None = None) -> int:
    """Return a sensible ``num_workers`` for a ``DataLoader`` feeding a model on ``device``.

    - Windows and macOS start workers with *spawn*: each worker starts a new Python process and unpickles the data
      set (so classes defined in a notebook cannot be used there), which is slower than loading in the main
      process for small images: 0 there.
    - Training on the CPU uses every core for the model; a worker only helps when cores are left over
      (measured on 2 cores, CIFAR-10 with crop / flip: 1227 img/s with 0 workers, 1153 with 1, 1124 with 2).
    - Training on a GPU leaves the CPU cores free for loading: up to 4 workers.
    """
    if platform.system() in {'Windows', 'Darwin'}:
        return 0
    numCores = os.cpu_count() or 1
    deviceType = torch.device(device).type if device is not None else GetDevice().type
    if deviceType == 'cpu':
        return min(4, numCores // 4)
    return max(1, min(4, numCores - 1))
