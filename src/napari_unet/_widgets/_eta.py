"""Time left of a training run, for the status line."""

from __future__ import annotations


def format_seconds(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour on)."""
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class RemainingTime:
    """Seconds left, from the mean duration of the last ``window`` steps.

    The first steps are slow (memory is allocated, the first patches prepared); counting
    them, as elapsed / steps does, made the early estimate about twice too long. They are
    skipped, and no estimate is given until ``skip + 2`` steps are done. The window is long
    enough to spread the occasional slow step (a live preview) over the steps around it.
    """

    def __init__(self, skip: int = 3, window: int = 30):
        self.skip, self.window = skip, window
        self.elapsed: list[float] = []  # seconds since the start, at the end of each step

    def update(self, step: int, iterations: int, elapsed: float) -> float | None:
        """Record that ``step`` of ``iterations`` ended ``elapsed`` seconds after the start;
        the seconds left, or None while it is too early to tell."""
        self.elapsed.append(float(elapsed))
        counted = self.elapsed[self.skip:][-(self.window + 1):]
        if len(counted) < 2:
            return None
        per_step = (counted[-1] - counted[0]) / (len(counted) - 1)
        return per_step * max(0, iterations - step)
