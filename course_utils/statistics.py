"""The course's paired rule for comparing two configurations measured on the same units (seeds, or images).

Two configurations measured on the same seed share its split, initialization and batches (or, for attribution
maps, the same image): the fair comparison is of the per-unit differences ``d_i = a_i - b_i``. Their mean and a
Student-t confidence interval (``scipy.stats.t``) say how large the difference is and how sure the run is of it. An
interval that holds 0 is a tie: the run cannot tell the two apart. With 2 or 3 seeds the interval is wide (the t
quantile at 95% is 12.7 for 2 units and 4.3 for 3): only large, consistent differences get a verdict.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import scipy.stats

VERDICTS = ('better', 'worse', 'tie')


class PairedResult(NamedTuple):
    """Mean of the paired differences ``a - b``, its confidence interval, and the verdict for ``a`` vs ``b``."""

    meanDiff: float
    low: float
    high: float
    numPairs: int
    confidence: float
    verdict: str  #<! 'better', 'worse' or 'tie', for a (higherIsBetter says which direction is better)

    def Describe(self, nameA: str, nameB: str, valFormat: str = '{:.3f}') -> str:
        """One line: the difference, its interval, the number of pairs and the verdict, in words."""
        fmt = valFormat.format
        dWords = {'better': f'{nameA} is better than {nameB}', 'worse': f'{nameA} is worse than {nameB}',
                  'tie': f'a tie: the interval holds 0, the run cannot tell {nameA} from {nameB}'}
        return (f'{nameA} - {nameB}: {fmt(self.meanDiff)} (paired {self.confidence:.0%} interval '
                f'[{fmt(self.low)}, {fmt(self.high)}], {self.numPairs} pairs): {dWords[self.verdict]}')


def PairedDifference(vA: np.ndarray | list[float], vB: np.ndarray | list[float], confidence: float = 0.95,
                     higherIsBetter: bool = True) -> PairedResult:
    """The paired rule: the mean of ``a_i - b_i`` and its t confidence interval over the ``n`` pairs
    (``mean +- t_{(1+confidence)/2, n-1} * s / sqrt(n)``, ``s`` the standard deviation of the differences, ddof 1).

    The verdict is ``'tie'`` when the interval holds 0, else ``'better'`` or ``'worse'`` for ``a``. Pairs with a NaN
    in either value are dropped. Needs at least 2 pairs. Identical pairs (``s = 0``) give a zero-width interval.
    """
    vA, vB = np.asarray(vA, dtype=float), np.asarray(vB, dtype=float)
    if vA.shape != vB.shape or vA.ndim != 1:
        raise ValueError(f'vA and vB must be 1-D and of one length (one value per seed or image, in the same '
                         f'order); got shapes {vA.shape} and {vB.shape}.')
    if not 0 < confidence < 1:
        raise ValueError(f'confidence must be in (0, 1), got {confidence}.')
    vD = (vA - vB)[~(np.isnan(vA) | np.isnan(vB))]
    if len(vD) < 2:
        raise ValueError(f'The paired rule needs at least 2 pairs with values, got {len(vD)}: run another seed.')
    meanDiff = float(vD.mean())
    halfWidth = float(scipy.stats.t.ppf((1 + confidence) / 2, len(vD) - 1) * vD.std(ddof=1) / np.sqrt(len(vD)))
    low, high = meanDiff - halfWidth, meanDiff + halfWidth
    if low <= 0 <= high:
        verdict = 'tie'
    else:
        verdict = 'better' if (meanDiff > 0) == higherIsBetter else 'worse'
    return PairedResult(meanDiff, low, high, len(vD), confidence, verdict)


def PairedTable(dfRuns: pd.DataFrame, groupCol: str, valueCol: str, baselineName: Any = None, unitCol: str = 'Seed',
                confidence: float = 0.95, higherIsBetter: bool = True) -> pd.DataFrame:
    """Every configuration of a long runs table (one row per configuration and seed) against a baseline, by the
    paired rule.

    Args:
        dfRuns:       One row per run, with the columns ``groupCol`` (the configuration), ``unitCol`` (the seed, or
                      whatever pairs the runs) and ``valueCol`` (the score).
        baselineName: The configuration the others are compared with; ``None``: the one with the best mean (its
                      verdict is then ``'best'``, else ``'baseline'``).

    Returns:
        One row per configuration, in first-seen order: ``Mean``, ``Std`` (over the units, ddof 1), ``Seeds``, and
        against the baseline ``Difference`` (mean of the paired differences), ``Low``, ``High`` (its interval),
        ``Pairs`` (the units both have) and ``Verdict`` (``'better'``, ``'worse'``, ``'tie'``).
    """
    for colName in (groupCol, valueCol, unitCol):
        if colName not in dfRuns.columns:
            raise KeyError(f'Column {colName!r} is not in the runs table (columns: {list(dfRuns.columns)}).')
    if dfRuns.duplicated([groupCol, unitCol]).any():
        raise ValueError(f'Each ({groupCol}, {unitCol}) pair must appear once: a configuration ran twice with one '
                         f'{unitCol.lower()}.')
    lNames = list(dict.fromkeys(dfRuns[groupCol]))
    dfWide = dfRuns.pivot(index=unitCol, columns=groupCol, values=valueCol)[lNames]
    vMeans = dfWide.mean()
    if baselineName is None:
        baselineName = vMeans.idxmax() if higherIsBetter else vMeans.idxmin()
        baselineVerdict = 'best'
    else:
        baselineVerdict = 'baseline'
    if baselineName not in dfWide.columns:
        raise KeyError(f'Baseline {baselineName!r} is not a configuration of the table (configurations: {lNames}).')
    dfOut = pd.DataFrame({'Mean': vMeans, 'Std': dfWide.std(ddof=1), 'Seeds': dfWide.notna().sum()})
    dfOut.index.name = groupCol
    for colName in ('Difference', 'Low', 'High', 'Pairs'):
        dfOut[colName] = np.nan
    dfOut['Verdict'] = baselineVerdict
    for name in lNames:
        if name == baselineName:
            continue
        oResult = PairedDifference(dfWide[name], dfWide[baselineName], confidence, higherIsBetter)
        dfOut.loc[name, ['Difference', 'Low', 'High', 'Pairs']] = (oResult.meanDiff, oResult.low, oResult.high,
                                                                 oResult.numPairs)
        dfOut.loc[name, 'Verdict'] = oResult.verdict
    dfOut.attrs.update(baseline=baselineName, confidence=confidence)  #<! What the differences are against
    return dfOut


def TableResults(dfTable: pd.DataFrame) -> dict[Any, PairedResult]:
    """The rows of a ``PairedTable`` other than its baseline, as ``PairedResult`` (for ``PlotPairedDifferences``)."""
    if 'baseline' not in dfTable.attrs:
        raise ValueError('TableResults needs the table PairedTable returns (it records its baseline).')
    return {name: PairedResult(dfRow['Difference'], dfRow['Low'], dfRow['High'], int(dfRow['Pairs']),
                               dfTable.attrs['confidence'], dfRow['Verdict'])
            for name, dfRow in dfTable.iterrows() if name != dfTable.attrs['baseline']}
