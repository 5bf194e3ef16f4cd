"""Timing training steps fairly: fresh passes, untimed warm-up steps, cuDNN's flags for a block.

- ``PrefetchDepth``: how many batches a ``DataLoader`` keeps requested ahead of the loop (``num_workers *
  prefetch_factor``; 0 for a loader without workers or any other iterable).
- ``TimeSteps``: the seconds of ``numSteps`` steps on a fresh pass over a loader, after untimed warm-up steps that
  use up whatever its workers loaded while the loop was not running.
- ``CudnnFlags``: ``torch.backends.cudnn.benchmark`` / ``deterministic`` and TF32 set for a block, restored after.

Why a fresh pass and a warm-up: configurations timed in turns leave each loader idle while the others run. A
``DataLoader`` with workers keeps ``PrefetchDepth`` batches requested, and its workers finish them while it is idle:
the next timed burst would then get those batches for free (with 4 workers and ``prefetch_factor=2``, 8 of 10
steps). A new pass (``iter(dlData)``) drops them (a persistent ``DataLoader`` discards what the old pass had
loaded), and ``PrefetchDepth`` untimed steps later the loop has consumed every batch requested before the burst
began: each timed batch was requested ``PrefetchDepth`` steps earlier, within the burst, as in a long training run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.utils.data import DataLoader

from .config import SyncDevice
from .loops import EndlessBatches


def PrefetchDepth(dlData: Iterable) -> int:
    """Batches a ``DataLoader`` keeps requested ahead of the loop: ``num_workers * prefetch_factor`` (0 without
    workers, and for any other iterable, e.g. a ``DeviceBatchLoader``, which makes each batch when asked)."""
    if not isinstance(dlData, DataLoader) or dlData.num_workers == 0:
        return 0
    return dlData.num_workers * (dlData.prefetch_factor or 2)  #<! PyTorch's default with workers is 2


def TimeSteps(hStep: Callable[[Any], None], dlData: Iterable, numSteps: int, device: torch.device | str,
              numWarmup: int | None = None) -> float:
    """Seconds of ``numSteps`` calls ``hStep(batch)`` on a fresh pass over ``dlData``, after ``numWarmup`` untimed
    calls (default ``max(1, PrefetchDepth(dlData))``).

    The pass starts anew (and continues into further passes when it is short), so a ``DataLoader`` cannot hand the
    timed steps batches its workers loaded while the caller timed something else; the warm-up steps consume the
    batches requested before this call and absorb the pass's start (workers' first batches, a new order). The device
    is synchronized before the timer starts and before it stops (GPU kernels run asynchronously).

    Raises ``ValueError`` for ``numSteps < 1`` or ``numWarmup < 1``, and (from ``EndlessBatches``) for a loader that
    yields no batches.
    """
    numWarmup = max(1, PrefetchDepth(dlData)) if numWarmup is None else numWarmup
    if numSteps < 1:
        raise ValueError(f'numSteps={numSteps}: time at least 1 step.')
    if numWarmup < 1:
        raise ValueError(f'numWarmup={numWarmup}: at least 1 untimed step, the first of a new pass pays its start '
                         f'(a DataLoader\'s workers load their first batches).')
    itBatches: Iterator = EndlessBatches(dlData)  #<! A new pass: new order, nothing loaded in advance counts
    for _ in range(numWarmup):
        hStep(next(itBatches))
    SyncDevice(device)  #<! The warm-up's kernels must not run on the timer
    startTime = time.perf_counter()
    for _ in range(numSteps):
        hStep(next(itBatches))
    SyncDevice(device)
    return time.perf_counter() - startTime


@contextmanager
def CudnnFlags(*, benchmark: bool | None = None, deterministic: bool | None = None,
               allowTf32: bool | None = None) -> Iterator[None]:
    """Set cuDNN's flags for a block and restore the previous values after it (also after an error). ``None``
    leaves a flag as it is.

    - ``benchmark``: cuDNN times its algorithms for every new input shape and keeps the fastest (pays with fixed
      shapes; each new shape costs a search).
    - ``deterministic``: only algorithms whose results do not vary from run to run.
    - ``allowTf32``: TF32 (10-bit mantissa) for float32 convolutions and matrix products on Ampere and newer GPUs.

    The flags are read on CUDA only; setting them elsewhere changes nothing.
    """
    tuBefore = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic, torch.backends.cudnn.allow_tf32,
                torch.backends.cuda.matmul.allow_tf32)
    try:
        if benchmark is not None:
            torch.backends.cudnn.benchmark = benchmark
        if deterministic is not None:
            torch.backends.cudnn.deterministic = deterministic
        if allowTf32 is not None:
            torch.backends.cudnn.allow_tf32 = allowTf32
            torch.backends.cuda.matmul.allow_tf32 = allowTf32
        yield
    finally:
        (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic, torch.backends.cudnn.allow_tf32,
         torch.backends.cuda.matmul.allow_tf32) = tuBefore
