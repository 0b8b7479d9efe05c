"""Progress of a phase (meta-training, validation, test): a bar on a terminal, log lines elsewhere.

On an interactive terminal outside sweeps, ``Progress`` draws a tqdm bar. Without one (``nohup``,
SLURM, a sweep job) it logs a line every ``interval`` seconds with the count, the rate and the
time left, so a log file shows that a long test is moving:

    test: 240/600 episodes (40%), 5.1 episodes/s, 1 min 10 s left
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from tqdm import tqdm

log = logging.getLogger(__name__)

LOG_INTERVAL_S = 30.0


def bar_wanted(multirun: bool) -> bool:
    """A progress bar only on an interactive terminal and outside sweeps."""
    return sys.stderr.isatty() and not multirun


def duration(seconds: float) -> str:
    """``75`` -> ``"1 min 15 s"``; ``3700`` -> ``"1 h 1 min"``; ``9.5`` -> ``"9.5 s"``."""
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


class Progress:
    """Count ``total`` steps of one phase (``desc``); a bar when ``bar`` else periodic lines.

    Args:
        total: steps in the phase. desc: its name (``meta-train``, ``test``).
        bar: draw a tqdm bar (``bar_wanted``); otherwise log every ``interval`` seconds.
        initial: steps already done (a resumed run). unit: the name of a step.
    """

    def __init__(self, total: int, desc: str, *, bar: bool, initial: int = 0,
                 unit: str = "episodes", interval: float = LOG_INTERVAL_S) -> None:
        self.total, self.desc, self.unit, self.interval = total, desc, unit, interval
        self.done, self._start_done = initial, initial
        self._start = self._last_log = time.monotonic()
        self._bar = tqdm(total=total, initial=initial, desc=desc, unit="ep",
                         dynamic_ncols=True) if bar else None

    def update(self, n: int = 1, postfix: dict[str, float] | None = None) -> None:
        """``n`` more steps done; ``postfix`` (e.g. the training loss) shows on the bar."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix({k: f"{v:.3f}" for k, v in postfix.items()},
                                      refresh=False)
            return
        now = time.monotonic()
        if now - self._last_log >= self.interval and self.done < self.total:
            self._last_log = now
            log.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        """``"test: 240/600 episodes (40%), 5.1 episodes/s, 1 min 10 s left"``."""
        elapsed = (now if now is not None else time.monotonic()) - self._start
        rate = (self.done - self._start_done) / elapsed if elapsed > 0 else 0.0
        left = f", {duration((self.total - self.done) / rate)} left" if rate > 0 else ""
        percent = 100 * self.done / self.total if self.total else 100.0
        return (f"{self.desc}: {self.done}/{self.total} {self.unit} ({percent:.0f}%), "
                f"{rate:.1f} {self.unit}/s{left}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
