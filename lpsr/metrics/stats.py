"""Statistics for leaderboards: bootstrap confidence intervals and paired tests.

- :func:`bootstrap_ci`: percentile bootstrap 95% CI of a statistic (median, mean), the
  interval of ``scipy.stats.bootstrap`` in bounded memory, seeded so a report is
  reproducible byte for byte.
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


#: resampled values held at once by :func:`bootstrap_ci` (2M: 16 MB per array of them)
BOOTSTRAP_CHUNK = 2_000_000


def bootstrap_ci(values: Sequence[float], statistic: Callable = np.median, confidence: float = 0.95,
                 n_resamples: int = N_RESAMPLES, seed: int = SEED) -> tuple[float, float]:
    """Percentile bootstrap CI of ``statistic`` over ``values`` (NaN, NaN when empty).

    The interval is ``scipy.stats.bootstrap(..., method="percentile", vectorized=True,
    rng=default_rng(seed))``'s to the last bit (tested against it), computed by hand because
    scipy draws and holds all ``n_resamples x n`` resamples at once (3.1 GB and 39 s for the
    median of 100k plates on this 2-core machine): here the same indices are drawn from the
    same generator a few rows at a time (``BOOTSTRAP_CHUNK`` values), and the median of a
    resample is read off the sorted values by counting (no partition of every resample)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size == 1 or np.all(v == v[0]):
        s = float(statistic(v))
        return s, s
    n, rng = v.size, np.random.default_rng(seed)
    theta = np.empty(n_resamples)
    rows, by_counting = max(1, BOOTSTRAP_CHUNK // n), statistic is np.median
    if by_counting:
        order = np.argsort(v, kind="stable")
        ranked, rank = v[order], np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
    for start in range(0, n_resamples, rows):
        k = min(rows, n_resamples - start)
        idx = rng.integers(0, n, (k, n))  # scipy's _bootstrap_resample draws exactly these, row by row
        theta[start:start + k] = _median_of_rows(ranked, rank[idx]) if by_counting else statistic(v[idx], axis=-1)
    alpha = np.asarray((1 - confidence) / 2, dtype=theta.dtype)
    ci = stats.quantile(theta, np.stack((alpha, 1 - alpha), axis=-1), axis=-1)  # as scipy.stats.bootstrap
    return float(ci[0]), float(ci[1])


def _median_of_rows(ranked: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """``np.median(ranked[ranks], axis=-1)`` for sorted ``ranked``: each row's middle order
    statistics found from how many times each rank was drawn."""
    k, n = ranks.shape
    counts = np.bincount((ranks + (np.arange(k) * n)[:, None]).ravel(), minlength=k * n).reshape(k, n)
    drawn = np.cumsum(counts, axis=1)
    low = (drawn <= (n - 1) // 2).sum(axis=1)  # where the ((n-1)//2)-th smallest value sits
    if n % 2:
        return ranked[low]
    high = (drawn <= n // 2).sum(axis=1)
    return (ranked[low] + ranked[high]) / 2


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
