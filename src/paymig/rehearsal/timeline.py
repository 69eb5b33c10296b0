"""Measured events and samples over the rehearsal, and the timeline image.

Samples are what the sampler read every half second: the weights in the emulator's
Route 53, the replication lag the source reports, and the alarm states. Requests come
from the clients' own records; the 5xx rate is the datapoints the 5xx-rate alarm was
evaluated on. Events are the steps, stamped when they happened. Times are seconds since
the rehearsal started (the machine's monotonic clock, shared by its processes).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from paymig.rehearsal.clients import RequestRecord


@dataclass(frozen=True)
class Sample:
    """One reading of the live signals."""

    t: float
    legacy: int | None
    aws: int | None
    lag_seconds: float | None
    lag_bytes: int | None
    alarms: dict[str, str]


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

    def at(self, moment: float) -> float:
        """A monotonic moment as seconds since the start."""
        return moment - self.began

    def sample(self, **values: Any) -> Sample:
        """Record a sample taken now."""
        item = Sample(t=self.now(), **values)
        with self._lock:
            self.samples.append(item)
        return item

    def event(self, name: str, detail: str = "", moment: float | None = None) -> Event:
        """Record an event happening now (or at the monotonic `moment`)."""
        item = Event(t=self.now() if moment is None else self.at(moment), name=name, detail=detail)
        with self._lock:
            self.events.append(item)
        return item

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        with self._lock:
            return {
                "samples": [asdict(s) for s in self.samples],
                "events": [asdict(e) for e in self.events],
            }


#: Events marked on the image, with their label and colour.
MARKED_EVENTS = {
    "shift-10": ("shift 10%", "tab:blue"),
    "shift-50": ("shift 50%", "tab:blue"),
    "fault": ("fault injected", "tab:red"),
    "composite-alarm": ("composite ALARM", "tab:purple"),
    "weights-restored": ("weights restored", "tab:green"),
    "repaired": ("fault repaired", "tab:gray"),
    "shift-100": ("shift 100%", "tab:blue"),
    "cutover": ("cutover", "black"),
    "fallback": ("fallback", "tab:brown"),
}
#: Colours of the migration stage bands (events named ``stage``, detail the stage).
STAGE_COLOURS = {"replicating": "tab:cyan", "cut-over": "tab:olive", "complete": "tab:green"}


def stage_bands(events: Sequence[Event], end: float) -> list[tuple[str, float, float]]:
    """(stage, start, end) of each stage, from the ``stage`` events in order."""
    marks = [(e.detail, e.t) for e in events if e.name == "stage"]
    return [(name, t, marks[i + 1][1] if i + 1 < len(marks) else end)
            for i, (name, t) in enumerate(marks)]  # fmt: skip


def _stages(axis: Any, events: Sequence[Event], end: float) -> None:
    for name, start, stop in stage_bands(events, end):
        axis.axvspan(start, stop, color=STAGE_COLOURS.get(name, "lightgray"), alpha=0.12)
        axis.annotate(f"stage {name}", (start, -8), fontsize=8, color="dimgray",
                      annotation_clip=False)  # fmt: skip


_STATE_COLOURS = {"OK": "tab:green", "ALARM": "tab:red", "INSUFFICIENT_DATA": "lightgray"}


def requests_per_second(
    records: Sequence[RequestRecord], began: float
) -> dict[str, dict[int, int]]:
    """Requests per whole second since the start, by side and answer."""
    counts: dict[str, Counter[int]] = {}
    for record in records:
        answer = "answered 2xx" if record.acknowledged else "failed"
        counts.setdefault(f"{record.side} {answer}", Counter())[int(record.sent - began)] += 1
    return {series: dict(counter) for series, counter in counts.items()}


def _weights(axis: Any, samples: Sequence[Sample]) -> None:
    t = [s.t for s in samples]
    axis.step(t, [s.aws for s in samples], where="post", label="aws record weight",
              color="tab:orange")  # fmt: skip
    axis.step(t, [s.legacy for s in samples], where="post", label="legacy record weight",
              color="tab:gray")  # fmt: skip
    axis.set_ylabel("Route 53 weight")
    axis.set_ylim(-5, 105)
    axis.legend(loc="center left", fontsize=8)


def _requests(axis: Any, records: Sequence[RequestRecord], began: float) -> None:
    colours = {"legacy answered 2xx": "tab:gray", "aws answered 2xx": "tab:orange",
               "aws failed": "tab:red", "legacy failed": "black"}  # fmt: skip
    for series, counts in sorted(requests_per_second(records, began).items()):
        seconds = sorted(counts)
        axis.plot(seconds, [counts[s] for s in seconds], label=f"{series} (requests/s)",
                  color=colours.get(series), linewidth=1)  # fmt: skip
    axis.set_ylabel("requests/s")
    axis.legend(loc="upper left", fontsize=8)


def _error_rate(
    axis: Any, points: Sequence[tuple[float, float | None]], threshold: float | None
) -> None:
    shown = [(t, v) for t, v in points if v is not None]
    axis.plot([t for t, _ in shown], [v for _, v in shown], "o-", markersize=3,
              color="tab:red", label="5xx rate of the AWS side (%), per alarm period")  # fmt: skip
    if threshold is not None:
        axis.axhline(threshold, color="tab:red", linestyle=":", linewidth=1,
                     label=f"5xx-rate alarm threshold ({threshold:g} %)")  # fmt: skip
    axis.set_ylabel("5xx rate (%)")
    axis.legend(loc="upper left", fontsize=8)


def _alarm_states(axis: Any, samples: Sequence[Sample], names: Sequence[str]) -> None:
    from matplotlib.patches import Patch

    for row, name in enumerate(names):
        for current, following in itertools.pairwise(samples):
            state = current.alarms.get(name)
            if state:
                axis.broken_barh([(current.t, following.t - current.t)], (row - 0.4, 0.8),
                                 color=_STATE_COLOURS.get(state, "white"))  # fmt: skip
    axis.set_yticks(range(len(names)), [n.split("-", 2)[-1] for n in names], fontsize=8)
    axis.set_ylim(-0.6, len(names) - 0.4)
    axis.legend(handles=[Patch(color=c, label=s) for s, c in _STATE_COLOURS.items()],
                loc="upper left", fontsize=8, ncol=3)  # fmt: skip
    axis.set_ylabel("alarm state")


def _lag(axis: Any, samples: Sequence[Sample]) -> None:
    t = [s.t for s in samples]
    seconds = axis.plot(t, [s.lag_seconds for s in samples], color="tab:purple",
                        label="replication replay lag (s, left)")  # fmt: skip
    axis.set_ylabel("lag (s)")
    twin = axis.twinx()
    behind = twin.plot(t, [s.lag_bytes for s in samples], color="tab:cyan", alpha=0.6,
                       label="WAL not yet replayed (bytes, right)")  # fmt: skip
    twin.set_ylabel("bytes")
    axis.legend(handles=seconds + behind, loc="upper left", fontsize=8)


def plot(
    timeline: Timeline,
    records: Sequence[RequestRecord],
    *,
    error_points: Sequence[tuple[float, float | None]],
    threshold: float | None,
    alarm_names: Sequence[str],
    path: Path,
) -> Path:
    """Weights, requests per side, the 5xx rate, alarm states, replication lag; events."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = list(timeline.samples)
    figure, axes = plt.subplots(
        5, 1, sharex=True, figsize=(11, 12), height_ratios=[2, 2, 2, 1.4, 1.6]
    )
    _weights(axes[0], samples)
    axes[0].set_title("paymig rehearsal: traffic, errors, alarms and replication (measured)")
    _requests(axes[1], records, timeline.began)
    _error_rate(axes[2], error_points, threshold)
    _alarm_states(axes[3], samples, alarm_names)
    _lag(axes[4], samples)
    axes[4].set_xlabel("seconds since the rehearsal started")
    _stages(axes[0], timeline.events, samples[-1].t if samples else 0.0)
    for event in timeline.events:
        if event.name not in MARKED_EVENTS:
            continue
        label, colour = MARKED_EVENTS[event.name]
        for axis in axes:
            axis.axvline(event.t, color=colour, linestyle="--", linewidth=1)
        axes[0].annotate(label, (event.t, 102), rotation=90, fontsize=8, va="top", ha="right",
                         color=colour)  # fmt: skip
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
