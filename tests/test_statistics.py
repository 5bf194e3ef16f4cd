"""The paired rule: per-unit differences, a t interval from scipy.stats, and a verdict that a tie cannot fake."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from course_utils import VERDICTS, PairedDifference


def test_interval_matches_scipy_and_the_formula() -> None:
    vA, vB = np.array([0.71, 0.74, 0.69, 0.73]), np.array([0.70, 0.71, 0.69, 0.70])
    oRes = PairedDifference(vA, vB)
    vD = vA - vB
    oT = scipy.stats.ttest_rel(vA, vB)
    lowCi, highCi = oT.confidence_interval(0.95)
    assert oRes.meanDiff == pytest.approx(vD.mean())
    assert (oRes.low, oRes.high) == pytest.approx((lowCi, highCi))
    assert oRes.numPairs == 4 and oRes.confidence == 0.95
    # The interval excludes 0 exactly when the paired t-test rejects at 5%
    assert (oRes.verdict != 'tie') == (oT.pvalue < 0.05)


@pytest.mark.parametrize('seed', range(20))
def test_verdict_agrees_with_the_paired_t_test(seed: int) -> None:
    oRng = np.random.default_rng(seed)
    vB = oRng.normal(0.7, 0.02, 5)
    vA = vB + oRng.normal(0.01, 0.01, 5)
    oRes = PairedDifference(vA, vB)
    assert oRes.verdict in VERDICTS
    assert (oRes.verdict == 'tie') == (scipy.stats.ttest_rel(vA, vB).pvalue >= 0.05)


def test_pairing_sees_what_an_unpaired_rule_misses() -> None:
    # Seeds differ a lot from each other, but a beats b by the same 0.01 on every seed: a paired win
    vB = np.array([0.60, 0.70, 0.80])
    oRes = PairedDifference(vB + 0.01 + np.array([0.001, -0.001, 0.0]), vB)
    assert oRes.verdict == 'better'
    assert np.sqrt(2) * vB.std(ddof=1) > 0.01  #<! The unpaired spread would have called it a tie


def test_direction_and_ties() -> None:
    assert PairedDifference([1.0, 2.0, 3.0], [2.0, 3.1, 4.0]).verdict == 'worse'
    assert PairedDifference([1.0, 2.0, 3.0], [2.0, 3.1, 4.0], higherIsBetter=False).verdict == 'better'
    assert PairedDifference([1.0, 2.0], [1.1, 1.9]).verdict == 'tie'
    oSame = PairedDifference([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert (oSame.low, oSame.high, oSame.verdict) == (0.0, 0.0, 'tie')


def test_two_pairs_give_a_wide_interval() -> None:
    # The t quantile for 1 degree of freedom is 12.7: two seeds that differ by 0.01 +- 0.005 are a tie
    oRes = PairedDifference([0.715, 0.705], [0.70, 0.70])
    assert oRes.verdict == 'tie'
    assert oRes.high - oRes.low == pytest.approx(2 * 12.706 * np.std([0.015, 0.005], ddof=1) / np.sqrt(2), rel=1e-3)


def test_nan_pairs_are_dropped_and_bad_input_is_named() -> None:
    assert PairedDifference([1.0, np.nan, 2.0, 3.0], [0.5, 1.0, 1.4, 2.6]).numPairs == 3
    with pytest.raises(ValueError, match='at least 2 pairs'):
        PairedDifference([1.0], [0.5])
    with pytest.raises(ValueError, match='one length'):
        PairedDifference([1.0, 2.0], [0.5, 1.0, 2.0])
    with pytest.raises(ValueError, match='confidence'):
        PairedDifference([1.0, 2.0], [0.5, 1.0], confidence=95)


def test_describe_names_both_and_the_verdict() -> None:
    oRes = PairedDifference([1.0, 2.0, 3.0], [0.0, 1.1, 1.9])
    text = oRes.Describe('Grad-CAM', 'random')
    assert 'Grad-CAM - random' in text and 'Grad-CAM is better than random' in text and '3 pairs' in text
    assert 'tie' in PairedDifference([1.0, 2.0], [1.1, 1.9]).Describe('a', 'b')


def test_paired_table_compares_every_configuration_with_the_baseline_seed_by_seed() -> None:
    import pandas as pd
    from course_utils import PairedTable
    # B is 0.02 above A on every seed (a consistent gain); C is A plus noise around 0 (a tie)
    dfRuns = pd.DataFrame({'Config': ['A'] * 3 + ['B'] * 3 + ['C'] * 3, 'Seed': [0, 1, 2] * 3,
                           'Acc': [0.70, 0.60, 0.80, 0.72, 0.62, 0.82, 0.75, 0.55, 0.79]})
    dfTable = PairedTable(dfRuns, 'Config', 'Acc', baselineName='A')
    assert list(dfTable.index) == ['A', 'B', 'C'] and list(dfTable['Verdict']) == ['baseline', 'better', 'tie']
    assert dfTable.loc['B', 'Difference'] == pytest.approx(0.02)
    assert dfTable.loc['B', 'Low'] == pytest.approx(0.02) and dfTable.loc['B', 'High'] == pytest.approx(0.02)
    assert dfTable.loc['A', 'Std'] == pytest.approx(0.1) and dfTable.loc['A', 'Seeds'] == 3
    from course_utils import TableResults
    dResults = TableResults(dfTable)
    assert list(dResults) == ['B', 'C'] and dResults['B'].verdict == 'better' and dResults['C'].numPairs == 3
    assert dResults['B'] == PairedDifference(dfRuns['Acc'][3:6].to_numpy(), dfRuns['Acc'][:3].to_numpy())
    dfBest = PairedTable(dfRuns.sample(frac=1, random_state=0), 'Config', 'Acc')  #<! Row order does not matter
    assert dfBest.loc['B', 'Verdict'] == 'best' and dfBest.loc['A', 'Verdict'] == 'worse'
    with pytest.raises(KeyError, match='Baseline'):
        PairedTable(dfRuns, 'Config', 'Acc', baselineName='Z')
    with pytest.raises(ValueError, match='appear once'):
        PairedTable(pd.concat([dfRuns, dfRuns.iloc[:1]]), 'Config', 'Acc')
    with pytest.raises(KeyError, match='Seed'):
        PairedTable(dfRuns.drop(columns='Seed'), 'Config', 'Acc')
