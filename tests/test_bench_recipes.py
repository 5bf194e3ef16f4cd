"""benchmarks/bench_recipes.py stays runnable: every recipe trains a few steps, and the report's ratios are right."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / 'benchmarks' / 'bench_recipes.py'


@pytest.fixture(scope='module')
def bench():
    oSpec = importlib.util.spec_from_file_location('bench_recipes', _PATH)
    oModule = importlib.util.module_from_spec(oSpec)
    sys.modules[oSpec.name] = oModule  #<! dataclasses look their module up there
    oSpec.loader.exec_module(oModule)
    yield oModule
    del sys.modules[oSpec.name]


def _ConvMacs(numIn: int, numOut: int, outSize: int) -> int:
    return numIn * numOut * 9 * outSize * outSize


def test_fixel_network_has_the_seed_s_flops(bench) -> None:
    # 3x3 convolutions without padding: 32 -> 30 -> 28, pool 14 -> 12 -> 10 -> 8, pool 4
    lMacs = [_ConvMacs(3, 30, 30), _ConvMacs(30, 60, 28), _ConvMacs(60, 120, 12), _ConvMacs(120, 240, 10),
             _ConvMacs(240, 500, 8)]
    numForward = 2 * (sum(lMacs) + 500 * 10)
    # Backward: the input's gradient and the weights' gradient of every layer, but no input gradient for the image
    numTraining = 3 * numForward - 2 * lMacs[0]
    assert bench.TrainingFlopsPerImage(bench.BuildFixelNet()) == pytest.approx(numTraining, rel=1e-6)
    assert round(numTraining / 1e6) == 705  #<! The figure the issue measured for FixelCourses 0086


def test_technion_network_ends_in_a_4096_input_classifier(bench) -> None:
    import torch
    oModel = bench.BuildTechnionNet().eval()
    lLinear = [o for o in oModel if isinstance(o, torch.nn.Linear)]
    assert [(o.in_features, o.out_features) for o in lLinear] == [(4096, 1024), (1024, 512), (512, 10)]
    assert oModel(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    lNames = [type(o).__name__ for o in oModel]
    assert lNames.count('Dropout2d') == 1 and lNames.index('Dropout2d') == lNames.index('MaxPool2d', 6) + 1


def test_every_recipe_runs_a_few_steps_and_the_report_lists_it(bench, folderRoot: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    monkeypatch.setenv('COURSE_DATA_DIR', str(folderRoot))
    outPath = tmp_path / 'results' / 'cpu.md'
    report = bench.main(['--train-per-class', '4', '--val-per-class', '2', '--batch-size', '8', '--max-epochs', '2',
                         '--max-steps', '2', '--threads', '1', '--out', str(outPath)])
    assert outPath.read_text() == report
    lRows = [line for line in report.splitlines() if line.startswith('| ') and not line.startswith('| Recipe')]
    assert [line.split(' | ')[0].removeprefix('| ') for line in lRows] == list(bench.RECIPES)
    for name in bench.RECIPES:
        lLog = next(line for line in report.splitlines() if line.startswith(f'- `{name}`'))
        assert lLog.count(' @ ') == 2, f'{name}: expected 2 epochs in the log, got {lLog}'
    assert 'Command: `python benchmarks/bench_recipes.py --train-per-class 4' in report
    assert '40 training and 20 validation images' in report


def test_ratios_are_to_the_fastest_course_recipe_and_caps_give_lower_bounds(bench) -> None:
    def Result(name: str, lSeconds: list[float], lValAcc: list[float], isCapped: bool = False):
        return bench.RecipeResult(bench.RECIPES[name], 1, 1e6, False, None, lSeconds, lValAcc, 100, 1.0, isCapped)

    lResults = [Result('fixel', [300.0, 600.0], [0.71, 0.76], isCapped=True),  #<! Capped at 10 min
                Result('technion', [100.0, 200.0], [0.5, 0.6]),                #<! Finished, never got there
                Result('lesson04', [120.0, 240.0], [0.70, 0.81]),
                Result('lesson09', [60.0, 180.0], [0.72, 0.79])]
    dRows = {line.split(' | ')[0].removeprefix('| '): line.split(' | ') for line in
             bench.ResultsTable(lResults).splitlines()[2:]}
    # 70%: lesson09 first (60 s); 75%: lesson09 (180 s, before lesson04's 240 s); 80%: lesson04 only (240 s)
    assert dRows['fixel'][7:] == ['5.0 min (5.00x)', '10.0 min (3.33x)', '> 10.0 min (cap) (> 2.50x) |']
    assert dRows['technion'][7:] == ['not reached (never)', 'not reached (never)', 'not reached (never) |']
    assert dRows['lesson09'][7:] == ['1.0 min (1.00x)', '3.0 min (1.00x)', 'not reached (never) |']
    assert dRows['lesson04'][7:] == ['2.0 min (2.00x)', '4.0 min (1.33x)', '4.0 min (1.00x) |']


def test_a_tiny_cap_stops_a_recipe_and_marks_it_capped(bench, folderRoot: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('COURSE_DATA_DIR', str(folderRoot))
    oResult = bench.RunRecipe(bench.RECIPES['fixel'], 1e-6, numTrainPerClass=4, numValPerClass=2, batchSize=8,
                              maxEpochs=None, maxSteps=None, log=lambda line: None)
    assert oResult.isCapped and len(oResult.lValAcc) == 1
    assert oResult.numTrainImages == 8  #<! The first batch always runs; the cap stops the epoch after it
    with pytest.raises(SystemExit):
        bench.main(['--cap-minutes', '0'])
