"""Statistics for leaderboards: bootstrap confidence intervals and paired tests.

- :func:`bootstrap_ci`: percentile bootstrap 95% CI of a statistic (median, mean) with
  ``scipy.stats.bootstrap``, seeded so a report is reproducible byte for byte.
- :func:`wilcoxon_p`: two-sided Wilcoxon signed-rank test on paired per-plate values
  (``scipy.stats.wilcoxon``; exact distribution for small samples without ties, normal
  approximation otherwise; zero differences dropped, as Wilcoxon's original test).
- :func:`mcnemar_p`: exact two-sided McNemar test on paired 0/1 outcomes (exact plate
  reads): a binomial test of the discordant pairs, ``b`` vs ``c``, at p = 0.5.

p-values are uncorrected for multiple comparisons; tables say so.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, Sequence

import numpy as np

ALPHA = 0.05
N_RESAMPLES = 2000
SEED = 0


def bootstrap_ci(values: Sequence[float], statistic: Callable = np.median, confidence: float = 0.95,
                 n_resamples: int = N_RESAMPLES, seed: int = SEED) -> tuple[float, float]:
    """Percentile bootstrap CI of ``statistic`` over ``values`` (NaN, NaN when empty)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size == 1 or np.all(v == v[0]):
        s = float(statistic(v))
        return s, s
    res = stats.bootstrap((v,), lambda x, axis: statistic(x, axis=axis), confidence_level=confidence,
                          n_resamples=n_resamples, method="percentile", vectorized=True,
                          rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def wilcoxon_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired ``a`` vs ``b`` (1.0 when they never differ)."""
    from scipy import stats

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.size} vs {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    d = x[keep] - y[keep]
    if not np.any(d != 0):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small-sample / ties notes
        return float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def mcnemar_counts(a: Sequence[float], b: Sequence[float]) -> tuple[int, int]:
    """Discordant pairs: (a right and b wrong, a wrong and b right)."""
    x, y = np.asarray(a, dtype=float) > 0.5, np.asarray(b, dtype=float) > 0.5
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.size} vs {y.size}")
    return int(np.sum(x & ~y)), int(np.sum(~x & y))


def mcnemar_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Exact two-sided McNemar p-value of paired 0/1 outcomes ``a`` vs ``b``."""
    from scipy import stats

    nb, nc = mcnemar_counts(a, b)
    if nb + nc == 0:
        return 1.0
    return float(min(1.0, stats.binomtest(min(nb, nc), nb + nc, 0.5).pvalue))


def paired_p(test: str, a: Sequence[float], b: Sequence[float]) -> float:
    if test == "wilcoxon":
        return wilcoxon_p(a, b)
    if test == "mcnemar":
        return mcnemar_p(a, b)
    raise ValueError(f"unknown paired test {test!r}")


def rank_marks(values: dict[str, float], higher_is_better: bool) -> dict[str, str]:
    """``best`` / ``second`` for the methods holding the best and second-best distinct value."""
    finite = {k: v for k, v in values.items() if v is not None and not (isinstance(v, float) and math.isnan(v))}
    distinct = sorted(set(finite.values()), reverse=higher_is_better)
    out: dict[str, str] = {}
    for k, v in finite.items():
        if distinct and v == distinct[0]:
            out[k] = "best"
        elif len(distinct) > 1 and v == distinct[1]:
            out[k] = "second"
    return out
