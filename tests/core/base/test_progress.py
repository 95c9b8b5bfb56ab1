"""Elapsed time and the estimate from the work's own rate."""

import pytest

from aomcore.base.progress import estimate, timing_text


def test_estimate_is_the_rate_so_far():
    assert estimate(25, 100, 10.0) == pytest.approx(30.0)
    assert estimate(100, 100, 10.0) == 0.0


@pytest.mark.parametrize("done,total,elapsed", [(0, 100, 50.0), (1, 1000, 1.0), (5, 0, 10.0), (3, 10, 0.0)])
def test_no_estimate_while_too_early_or_undefined(done, total, elapsed):
    assert estimate(done, total, elapsed) is None


def test_text():
    assert timing_text(10, 100, 20) == "20 s elapsed, about 3 min 00 s left"
    assert timing_text(0, 100, 1) == "1 s elapsed, estimating the time left"
    assert timing_text(100, 100, 75) == "1 min 15 s elapsed"
    assert timing_text(50, 100, 4000) == "1 h 06 min elapsed, about 1 h 06 min left"
