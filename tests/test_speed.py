"""course_utils.speed: fair step timings (fresh pass, warm-up over a DataLoader's prefetch) and cuDNN flags."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

import course_utils.speed as speed
from course_utils import CudnnFlags, DeviceBatchLoader, PrefetchDepth, TimeSteps

NUM_WORKERS, PREFETCH = 2, 2
NUM_STEPS = 6


class LoggedDataset(Dataset):
    """Item ``i`` is ``(i, the time it was made)``; every item made (consumed or not) is also logged in a file,
    one line per ``__getitem__`` call, so a test can count what the workers made in any time window."""

    def __init__(self, numItems: int, logPath: Path, secPerItem: float = 0.0) -> None:
        self.numItems, self.logPath, self.secPerItem = numItems, logPath, secPerItem

    def __len__(self) -> int:
        return self.numItems

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        time.sleep(self.secPerItem)
        madeTime = time.monotonic()  #<! System-wide clock: comparable between the worker processes and the test
        with open(self.logPath, 'a', encoding='utf-8') as hFile:  #<! One short append per call: atomic on POSIX
            hFile.write(f'{madeTime!r}\n')
        return torch.tensor(idx), torch.tensor(madeTime, dtype=torch.float64)

    def MadeTimes(self) -> list[float]:
        return [float(line) for line in self.logPath.read_text(encoding='utf-8').split()]


def _Loader(dsData: Dataset) -> DataLoader:
    """Batches of one item (a batch is made by one call), the lesson's baseline loader options."""
    return DataLoader(dsData, batch_size=1, num_workers=NUM_WORKERS, persistent_workers=True,
                      prefetch_factor=PREFETCH)


class StepRecorder:
    """A training step that records each batch's making time and the time the step returned."""

    def __init__(self, secPerStep: float = 0.0) -> None:
        self.secPerStep = secPerStep
        self.lMadeTimes: list[float] = []
        self.lDoneTimes: list[float] = []

    def __call__(self, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        time.sleep(self.secPerStep)
        self.lMadeTimes.append(float(batch[1][0]))
        self.lDoneTimes.append(time.monotonic())


# ------------------------------------------------------------------------------------------------
# The prefetch of an idle DataLoader is never timed
# ------------------------------------------------------------------------------------------------
def test_every_timed_step_of_a_loading_bound_loader_loads_its_batch(tmp_path: Path) -> None:
    """Loading is the bottleneck (50 ms a batch, the step is instant): in a long run every step waits for its
    batch. Between two bursts the loader idles (the other configurations' turn) and its workers make their
    PrefetchDepth requested batches; none of them may reach the timed window."""
    dsData = LoggedDataset(200, tmp_path / 'made.log', secPerItem=0.05)
    dlData = _Loader(dsData)
    numWarmup = PrefetchDepth(dlData)
    assert numWarmup == NUM_WORKERS * PREFETCH == 4
    TimeSteps(StepRecorder(), dlData, NUM_STEPS, 'cpu')  #<! First burst: starts the persistent workers
    time.sleep(0.5)  #<! Idle: the workers make the batches the first burst left requested

    oStep = StepRecorder()
    valSec = TimeSteps(oStep, dlData, NUM_STEPS, 'cpu')
    assert len(oStep.lMadeTimes) == numWarmup + NUM_STEPS
    windowStart, windowEnd = oStep.lDoneTimes[numWarmup - 1], oStep.lDoneTimes[-1]  #<! The timer runs in between
    lTimedMade = oStep.lMadeTimes[numWarmup:]
    numMadeInWindow = sum(windowStart < madeTime <= windowEnd for madeTime in lTimedMade)
    assert numMadeInWindow == NUM_STEPS, (
        f'Expected each of the {NUM_STEPS} timed batches to be made during the timed window, '
        f'{NUM_STEPS - numMadeInWindow} were made before it (made at {lTimedMade}, window from {windowStart})')
    # The workers made at least the timed batches in the window, and at most one more per other worker
    numAllInWindow = sum(windowStart < madeTime <= windowEnd for madeTime in dsData.MadeTimes())
    assert NUM_STEPS <= numAllInWindow <= NUM_STEPS + NUM_WORKERS - 1
    assert valSec >= (NUM_STEPS // NUM_WORKERS - 1) * 0.05  #<! 2 workers make 2 batches each 50 ms


def test_the_check_detects_an_iterator_kept_across_bursts(tmp_path: Path) -> None:
    """The flattering timing this module prevents: one iterator for all bursts, no warm-up. After the idle time,
    the first PrefetchDepth timed batches were made before the timer started: the check above would fail."""
    dlData = _Loader(LoggedDataset(200, tmp_path / 'made.log', secPerItem=0.05))
    itBatches = iter(dlData)
    for _ in range(NUM_STEPS):
        next(itBatches)
    time.sleep(0.5)  #<! Idle: the other configurations' turn
    windowStart = time.monotonic()
    lTimedMade = [float(next(itBatches)[1][0]) for _ in range(NUM_STEPS)]
    numMadeBefore = sum(madeTime < windowStart for madeTime in lTimedMade)
    assert numMadeBefore == PrefetchDepth(dlData)


def test_a_compute_bound_loop_makes_one_batch_per_timed_step(tmp_path: Path) -> None:
    """Loading is instant, the step takes 50 ms: the loader stays PrefetchDepth batches ahead, and during the timed
    window it makes exactly one batch for each timed step (the one that refills its queue)."""
    dsData = LoggedDataset(200, tmp_path / 'made.log')
    dlData = _Loader(dsData)
    for _ in range(2):  #<! The second burst follows an idle time with the workers already running
        oStep = StepRecorder(secPerStep=0.05)
        TimeSteps(oStep, dlData, NUM_STEPS, 'cpu')
        time.sleep(0.2)
    numWarmup = PrefetchDepth(dlData)
    windowStart, windowEnd = oStep.lDoneTimes[numWarmup - 1], oStep.lDoneTimes[-1]
    numMadeInWindow = sum(windowStart < madeTime <= windowEnd for madeTime in dsData.MadeTimes())
    assert numMadeInWindow == NUM_STEPS


# ------------------------------------------------------------------------------------------------
# TimeSteps: steps, passes, synchronization, errors
# ------------------------------------------------------------------------------------------------
def test_time_steps_runs_warmup_then_timed_steps_across_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    lSynced = []
    monkeypatch.setattr(speed, 'SyncDevice', lambda device: lSynced.append(device))
    dlData = DataLoader(TensorDataset(torch.arange(5)), batch_size=2)  #<! 3 batches a pass
    lSeen = []
    valSec = TimeSteps(lambda batch: lSeen.append(batch[0].tolist()), dlData, 4, 'cpu', numWarmup=2)
    assert lSeen == [[0, 1], [2, 3], [4], [0, 1], [2, 3], [4]]  #<! A fresh pass, then the next one
    assert lSynced == ['cpu', 'cpu'] and valSec > 0
    lSeen.clear()
    TimeSteps(lambda batch: lSeen.append(batch[0].tolist()), dlData, 1, 'cpu')  #<! Default warm-up: 1 step
    assert lSeen == [[0, 1], [2, 3]]  #<! Each call starts a new pass


def test_time_steps_refuses_bad_counts_and_an_empty_loader() -> None:
    dlData = DataLoader(TensorDataset(torch.arange(4)), batch_size=2)
    with pytest.raises(ValueError, match='numSteps=0'):
        TimeSteps(lambda batch: None, dlData, 0, 'cpu')
    with pytest.raises(ValueError, match='numWarmup=0'):
        TimeSteps(lambda batch: None, dlData, 1, 'cpu', numWarmup=0)
    with pytest.raises(ValueError, match='no batches'):
        TimeSteps(lambda batch: None, [], 1, 'cpu')


def test_prefetch_depth_of_loaders() -> None:
    dsData = TensorDataset(torch.arange(8))
    assert PrefetchDepth(DataLoader(dsData, batch_size=2)) == 0
    assert PrefetchDepth(DataLoader(dsData, batch_size=2, num_workers=2, prefetch_factor=5)) == 10
    assert PrefetchDepth(DataLoader(dsData, batch_size=2, num_workers=2)) == 4  #<! PyTorch's default factor: 2
    oFast = DeviceBatchLoader(torch.zeros(8, 4, 4, 3, dtype=torch.uint8), torch.zeros(8, dtype=torch.long), 2,
                              vMean=(0.5, 0.5, 0.5), vStd=(0.25, 0.25, 0.25))
    assert PrefetchDepth(oFast) == 0 and PrefetchDepth([1, 2]) == 0


# ------------------------------------------------------------------------------------------------
# CudnnFlags
# ------------------------------------------------------------------------------------------------
def _Flags() -> tuple[bool, bool, bool, bool]:
    return (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic, torch.backends.cudnn.allow_tf32,
            torch.backends.cuda.matmul.allow_tf32)


def test_cudnn_flags_sets_and_restores_even_after_an_error() -> None:
    tuBefore = _Flags()
    with CudnnFlags(benchmark=not tuBefore[0]):
        assert _Flags() == (not tuBefore[0], *tuBefore[1:])  #<! Only the flag asked for
    assert _Flags() == tuBefore
    with pytest.raises(RuntimeError, match='inside'):
        with CudnnFlags(benchmark=True, deterministic=True, allowTf32=False):
            assert _Flags() == (True, True, False, False)
            raise RuntimeError('inside')
    assert _Flags() == tuBefore
