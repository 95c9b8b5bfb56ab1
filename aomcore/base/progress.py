"""Honest progress: elapsed time and an estimate from the work's own rate, never a fixed guess."""

from __future__ import annotations

__all__ = ["estimate", "timing_text"]

#: No estimate before this share of the work is done or this many seconds have passed: the
#: first steps (loading data, building the model) say little about the rate.
MIN_SHARE, MIN_SECONDS = 0.03, 3.0


def estimate(done: float, total: float, elapsed: float) -> float | None:
    """Seconds left at the rate so far, ``elapsed · (total − done) / done``; None while too early to say.

    Parameters
    ----------
    done, total : float
        Units of work done and in all (images, steps, snapshots); ``total <= 0`` gives None.
    elapsed : float
        Seconds since the work started.
    """
    if total <= 0 or done <= 0 or elapsed <= 0:
        return None
    share = min(done / total, 1.0)
    if share < MIN_SHARE and elapsed < MIN_SECONDS:
        return None
    return max(0.0, elapsed * (1.0 - share) / share)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def timing_text(done: float, total: float, elapsed: float) -> str:
    """``"1 min 05 s elapsed, about 40 s left"`` (or ``"…, estimating"`` while too early)."""
    left = estimate(done, total, elapsed)
    if done >= total > 0:
        return f"{_clock(elapsed)} elapsed"
    rest = "estimating the time left" if left is None else f"about {_clock(left)} left"
    return f"{_clock(elapsed)} elapsed, {rest}"
