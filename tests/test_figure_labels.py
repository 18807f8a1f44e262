"""Cost/quality figure: methods drawn on the same spot share one label instead of overprinting."""
from __future__ import annotations

from bench.report.figures import coincident


def test_points_on_the_same_spot_share_a_label_and_distinct_ones_do_not():
    pts = [(2.06e6, 19.18, "pecl-d64-manhattan"), (2.06e6, 19.18, "pecl-d128-manhattan"),
           (2.06e6, 19.20, "mse"),                      # within 1.5% of the y span (8-21 dB)
           (2.06e6, 21.0, "mse-skip"),                  # same x, another y
           (7.0e4, 19.18, "srcnn"),                     # same y, another x
           (2.06e6, 8.0, "pecl-form-pull")]
    groups = coincident(pts)
    assert sorted(map(sorted, groups.values())) == sorted(map(sorted, [
        ["pecl-d64-manhattan", "pecl-d128-manhattan", "mse"], ["mse-skip"], ["srcnn"], ["pecl-form-pull"]]))
    assert coincident([]) == {}
