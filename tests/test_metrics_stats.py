"""Statistics and the metric table against hand-computed values on tiny fixed inputs."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lpsr.metrics.spec import IMAGE_METRICS, OCR_METRICS, aggregate, confident_but_wrong, plate_table, recognisers_in, summary
from lpsr.metrics.stats import bootstrap_ci, mcnemar_counts, mcnemar_p, rank_marks, wilcoxon_p
from lpsr.metrics.text import mark_errors


def test_wilcoxon_known_cases():
    # all 5 differences positive, no ties: exact two-sided p = 2 * (1/2)^5 = 0.0625
    assert wilcoxon_p([2, 3, 4, 5, 6], [1, 1, 1, 1, 1]) == pytest.approx(0.0625)
    # differences +1 +2 +3 +4 -5: W- = 5; P(W <= 5) under H0 with n=5 is 10/32; two-sided 20/32
    assert wilcoxon_p([1, 2, 3, 4, 0], [0, 0, 0, 0, 5]) == pytest.approx(20 / 32)
    # never different: p = 1
    assert wilcoxon_p([1.0, 2.0], [1.0, 2.0]) == 1.0


def test_mcnemar_exact_known_cases():
    a = [1, 1, 1, 1, 1, 0, 1]
    b = [0, 0, 0, 0, 0, 0, 1]
    assert mcnemar_counts(a, b) == (5, 0)
    assert mcnemar_p(a, b) == pytest.approx(2 * 0.5**5)  # 0.0625
    # one discordant pair each way: p = 1
    assert mcnemar_p([1, 0, 1], [0, 1, 1]) == pytest.approx(1.0)
    # b=4, c=1: two-sided binomial = 2 * P(X <= 1 | n=5) = 2 * 6/32
    assert mcnemar_p([1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 1, 0]) == pytest.approx(12 / 32)
    assert mcnemar_p([0, 0], [0, 0]) == 1.0


def test_bootstrap_ci_hand_computed():
    # mean of two resampled values from [0, 1]: 0 (p 1/4), 0.5 (1/2), 1 (1/4): the 95% CI is [0, 1]
    lo, hi = bootstrap_ci([0.0, 1.0], np.mean)
    assert (lo, hi) == (pytest.approx(0.0), pytest.approx(1.0))
    assert bootstrap_ci([3.0, 3.0, 3.0], np.median) == (3.0, 3.0)
    assert all(math.isnan(x) for x in bootstrap_ci([], np.median))
    # seeded: the same interval every time, and it contains the statistic
    v = np.arange(20, dtype=float)
    first = bootstrap_ci(v, np.median)
    assert first == bootstrap_ci(v, np.median)
    assert first[0] <= np.median(v) <= first[1]


def test_rank_marks_best_and_second_with_ties():
    assert rank_marks({"a": 1.0, "b": 3.0, "c": 2.0}, True) == {"b": "best", "c": "second"}
    assert rank_marks({"a": 1.0, "b": 3.0, "c": 2.0}, False) == {"a": "best", "c": "second"}
    assert rank_marks({"a": 3.0, "b": 3.0, "c": 2.0, "d": float("nan")}, True) == {"a": "best", "b": "best", "c": "second"}


def test_plate_table_is_the_one_scoring_function():
    hr = np.full((16, 16, 3), 100, np.uint8)
    sr = hr + 5
    reads = {"fake": [("皖A12345", 0.95), ("皖A1234", 0.5)]}
    t = plate_table(["p1", "p2"], ["皖A12345", "皖A12345"], [sr, hr], [hr, hr], 0, reads)
    assert list(t.columns) == ["id", "text", "psnr", "psnr_y", "ssim_y",
                               "ocr_fake_text", "ocr_fake_exact", "ocr_fake_char_acc", "ocr_fake_cbw", "ocr_fake_conf"]
    assert t["psnr"][0] == pytest.approx(10 * np.log10(255**2 / 25)) and t["psnr"][1] == float("inf")
    assert list(t["ocr_fake_exact"]) == [1.0, 0.0]
    assert list(t["ocr_fake_cbw"]) == [0.0, 0.0]  # the wrong read is not confident
    assert t["ocr_fake_char_acc"][1] == pytest.approx(6 / 7)
    assert recognisers_in(t) == ["fake"]
    s = summary(t)
    assert s["fake.plate_acc"]["value"] == 0.5 and s["psnr"]["n"] == 1  # inf is not averaged


def test_confident_but_wrong():
    assert confident_but_wrong("皖A12346", 0.9, "皖A12345") == 1.0
    assert confident_but_wrong("皖A12346", 0.89, "皖A12345") == 0.0
    assert confident_but_wrong("皖A·12345", 0.99, "皖A12345") == 0.0


def test_aggregates_follow_the_spec():
    psnr_y = next(m for m in IMAGE_METRICS if m.key == "psnr_y")
    acc = next(m for m in OCR_METRICS if m.key == "plate_acc")
    assert aggregate(psnr_y, pd.Series([1.0, 2.0, 10.0]))["value"] == 2.0
    assert aggregate(acc, pd.Series([1.0, 0.0, 0.0, 0.0]))["value"] == 0.25
    assert acc.fmt(0.25) == "25.0%" and psnr_y.fmt(21.234) == "21.23"


def test_mark_errors_aligns_reading_to_truth():
    assert mark_errors("皖A1234", "皖A12345")[-1] == ("_", False)
    assert [ok for _, ok in mark_errors("皖B12345", "皖A12345")] == [True, False] + [True] * 5
    assert mark_errors("", "") == []


@pytest.mark.parametrize("n", [2, 3, 8, 65, 301, 1000])
def test_bootstrap_ci_is_scipys_interval_to_the_last_bit(n, monkeypatch):
    """The oracle: scipy.stats.bootstrap itself (percentile, vectorised, the same seed), on
    continuous values, ties and 0/1 reads, for both leaderboard statistics; and the same
    interval when only a few resamples are held at once."""
    from scipy import stats

    from lpsr.metrics import stats as ours

    rng = np.random.default_rng(n)
    samples = [rng.normal(25, 2, n), rng.integers(0, 4, n).astype(float), (rng.random(n) < 0.8).astype(float)]
    for v in samples:
        for statistic in (np.median, np.mean):
            if np.all(v == v[0]):
                continue
            ref = stats.bootstrap((v,), lambda x, axis: statistic(x, axis=axis), confidence_level=0.95, n_resamples=500,
                                  method="percentile", vectorized=True, rng=np.random.default_rng(7))
            expected = (float(ref.confidence_interval.low), float(ref.confidence_interval.high))
            assert bootstrap_ci(v, statistic, n_resamples=500, seed=7) == expected
            monkeypatch.setattr(ours, "BOOTSTRAP_CHUNK", 3 * n)  # three resamples at a time
            assert bootstrap_ci(v, statistic, n_resamples=500, seed=7) == expected
            monkeypatch.undo()
