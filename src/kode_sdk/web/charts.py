"""The numbers behind the session page's charts, laid out for inline SVG.

Only geometry and labels are computed here; the template draws them (and
escapes every label), and a table beside each chart carries the same figures
for screen readers and for copying.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from statistics import median

from ..types import ToolCallRecord, ToolCallState

__all__ = ["Bar", "DurationChart", "RateRow", "SuccessChart", "duration_chart", "is_failed", "success_chart"]

#: Width of the drawing area of every chart, in SVG user units.
WIDTH = 600
_ROW = 26
_LABEL = 150


def is_failed(record: ToolCallRecord) -> bool:
    """A call counts as failed when it is marked as an error or ended in ``failed``."""
    return record.is_error or record.state is ToolCallState.FAILED


@dataclass(frozen=True)
class RateRow:
    """One tool's calls: how many succeeded, failed, or neither (denied, pending, …)."""

    name: str
    ok: int
    failed: int
    other: int
    y: float
    ok_width: float
    failed_width: float
    other_width: float

    @property
    def total(self) -> int:
        """All calls of this tool."""
        return self.ok + self.failed + self.other

    @property
    def rate(self) -> str:
        """The share that succeeded, as a percentage of the calls that finished."""
        done = self.ok + self.failed
        return f"{100 * self.ok / done:.0f} %" if done else "n/a"


@dataclass(frozen=True)
class SuccessChart:
    """Tool success rate, one stacked bar per tool name."""

    rows: list[RateRow]
    height: float
    label_width: int = _LABEL
    bar_width: int = WIDTH - _LABEL - 60


def success_chart(records: Iterable[ToolCallRecord]) -> SuccessChart:
    """Stacked bars of succeeded / failed / other calls per tool name, widest first."""
    counts: dict[str, list[int]] = {}
    for record in records:
        slot = counts.setdefault(record.name, [0, 0, 0])
        if is_failed(record):
            slot[1] += 1
        elif record.state is ToolCallState.COMPLETED:
            slot[0] += 1
        else:
            slot[2] += 1
    span = WIDTH - _LABEL - 60
    most = max((sum(c) for c in counts.values()), default=1)
    rows = []
    for i, (name, (ok, failed, other)) in enumerate(sorted(counts.items(), key=lambda kv: (-sum(kv[1]), kv[0]))):
        rows.append(
            RateRow(
                name=name,
                ok=ok,
                failed=failed,
                other=other,
                y=i * _ROW + 4,
                ok_width=span * ok / most,
                failed_width=span * failed / most,
                other_width=span * other / most,
            )
        )
    return SuccessChart(rows=rows, height=len(rows) * _ROW + 8)


@dataclass(frozen=True)
class Bar:
    """One tool call's duration bar."""

    call_id: str
    name: str
    duration_ms: float
    failed: bool
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class DurationChart:
    """Duration of each timed call, in the order the calls were made."""

    bars: list[Bar]
    max_ms: float
    height: int
    baseline: int
    by_name: list[tuple[str, int, float, float]] = field(default_factory=list)
    shown_from: int = 0


def duration_chart(records: Iterable[ToolCallRecord], *, most: int = 120) -> DurationChart:
    """Bars of the last ``most`` timed calls, and per tool: count, median and
    maximum duration in ms."""
    timed = sorted((r for r in records if r.duration_ms is not None), key=lambda r: r.created_at)
    per_name: dict[str, list[float]] = {}
    for record in timed:
        assert record.duration_ms is not None
        per_name.setdefault(record.name, []).append(record.duration_ms)
    by_name = [(name, len(ms), median(ms), max(ms)) for name, ms in sorted(per_name.items())]
    shown = timed[-most:]
    height, baseline = 160, 140
    top = max((r.duration_ms or 0.0 for r in shown), default=0.0) or 1.0
    step = (WIDTH - 50) / max(len(shown), 1)
    bars = []
    for i, record in enumerate(shown):
        ms = record.duration_ms or 0.0
        h = max((baseline - 10) * ms / top, 1.0)
        bars.append(
            Bar(
                call_id=record.id,
                name=record.name,
                duration_ms=ms,
                failed=is_failed(record),
                x=50 + i * step + step * 0.1,
                y=baseline - h,
                width=min(max(step * 0.8, 1.0), 36.0),
                height=h,
            )
        )
    return DurationChart(
        bars=bars, max_ms=top, height=height, baseline=baseline, by_name=by_name, shown_from=len(timed) - len(shown)
    )
