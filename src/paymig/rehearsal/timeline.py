"""Measured events and samples over the rehearsal, and the timeline image.

Samples are what a sampler thread read: the weights in the emulator's Route 53, the
replication lag the source reports, and the migration-health alarm state (the error
signal). Events are the steps, stamped when they happened. Times are seconds since the
rehearsal started (monotonic clock).
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Sample:
    """One reading of the live signals."""

    t: float
    legacy: int | None
    aws: int | None
    lag_seconds: float | None
    lag_bytes: int | None
    alarm: bool | None


@dataclass(frozen=True)
class Event:
    """A step of the rehearsal and when it happened."""

    t: float
    name: str
    detail: str = ""


@dataclass
class Timeline:
    """Thread-safe record of samples and events."""

    began: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        """Seconds since the start."""
        return time.monotonic() - self.began

    def sample(self, **values: Any) -> Sample:
        """Record a sample taken now."""
        item = Sample(t=self.now(), **values)
        with self._lock:
            self.samples.append(item)
        return item

    def event(self, name: str, detail: str = "") -> Event:
        """Record an event happening now."""
        item = Event(t=self.now(), name=name, detail=detail)
        with self._lock:
            self.events.append(item)
        return item

    def first(self, name: str) -> Event | None:
        """The first event of that name."""
        with self._lock:
            return next((e for e in self.events if e.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        with self._lock:
            return {
                "samples": [asdict(s) for s in self.samples],
                "events": [asdict(e) for e in self.events],
            }


#: Events marked on the image, with their line style.
MARKED_EVENTS = {
    "shift-10": ("shift 10%", "tab:blue"),
    "shift-50": ("shift 50%", "tab:blue"),
    "fault": ("fault injected", "tab:red"),
    "rollback-done": ("weights restored", "tab:green"),
}


def plot(timeline: Timeline, path: Path) -> Path:
    """Draw weights, replication lag and the error signal over time; mark the events."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = list(timeline.samples)
    t = [s.t for s in samples]
    figure, (weights, lag, alarm) = plt.subplots(
        3, 1, sharex=True, figsize=(10, 7), height_ratios=[2, 2, 1]
    )
    weights.step(t, [s.aws for s in samples], where="post", label="aws", color="tab:orange")
    weights.step(t, [s.legacy for s in samples], where="post", label="legacy", color="tab:gray")
    weights.set_ylabel("Route 53 weight")
    weights.set_ylim(-5, 105)
    weights.legend(loc="center left")
    weights.set_title("paymig rehearsal: traffic, replication and the error signal (measured)")
    lag.plot(t, [s.lag_seconds for s in samples], color="tab:purple", label="replay lag (s)")
    lag.set_ylabel("replication lag (s)")
    lag_bytes = lag.twinx()
    lag_bytes.plot(
        t, [s.lag_bytes for s in samples], color="tab:cyan", alpha=0.6, label="WAL behind (bytes)"
    )
    lag_bytes.set_ylabel("WAL behind (bytes)")
    alarm.step(
        t,
        [None if s.alarm is None else int(s.alarm) for s in samples],
        where="post",
        color="tab:red",
    )
    alarm.set_yticks([0, 1], ["OK", "ALARM"])
    alarm.set_ylabel("migration-health")
    alarm.set_xlabel("seconds since the rehearsal started")
    for event in timeline.events:
        if event.name not in MARKED_EVENTS:
            continue
        label, colour = MARKED_EVENTS[event.name]
        for axis in (weights, lag, alarm):
            axis.axvline(event.t, color=colour, linestyle="--", linewidth=1)
        weights.annotate(
            label, (event.t, 102), rotation=90, fontsize=8, va="top", ha="right", color=colour
        )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
