"""Per-store call metrics (:class:`Metrics`): counts by kind, latencies, errors."""

from __future__ import annotations

import bisect
import math

from ..types import (
    OperationCounts,
    PerformanceMetrics,
    StorageMetrics,
    StoreMetrics,
    now_utc,
)

# Latency buckets in ms: 10 per decade from 10 µs to 100 s. Bounded memory,
# percentiles within one bucket (~26 %) of the truth, exact min/max/avg.
_BUCKET_BOUNDS_MS: tuple[float, ...] = tuple(10 ** (e / 10) for e in range(-20, 51))


class Metrics:
    """Counters per operation kind and a bounded latency histogram.

    ``record`` is called by :func:`operation` for every public store call.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {"saves": 0, "loads": 0, "queries": 0, "deletes": 0, "other": 0}
        self.by_method: dict[str, int] = {}
        self.errors = 0
        self._buckets = [0] * (len(_BUCKET_BOUNDS_MS) + 1)
        self._n = 0
        self._sum_ms = 0.0
        self._min_ms = math.inf
        self._max_ms = 0.0

    def record(self, kind: str, method: str, elapsed_ms: float, ok: bool = True) -> None:
        """Count one call of ``method`` (of ``kind``) that took ``elapsed_ms``."""
        self.counts[kind] += 1
        self.by_method[method] = self.by_method.get(method, 0) + 1
        if not ok:
            self.errors += 1
        self._buckets[bisect.bisect_left(_BUCKET_BOUNDS_MS, elapsed_ms)] += 1
        self._n += 1
        self._sum_ms += elapsed_ms
        self._min_ms = min(self._min_ms, elapsed_ms)
        self._max_ms = max(self._max_ms, elapsed_ms)

    def percentile(self, q: float) -> float:
        """Latency (ms) below which a fraction ``q`` of calls fell, from the histogram."""
        if self._n == 0:
            return 0.0
        rank = q * self._n
        seen = 0
        for index, count in enumerate(self._buckets):
            seen += count
            if seen >= rank and count:
                upper = _BUCKET_BOUNDS_MS[index] if index < len(_BUCKET_BOUNDS_MS) else self._max_ms
                lower = _BUCKET_BOUNDS_MS[index - 1] if index > 0 else 0.0
                # Interpolate inside the bucket, then clamp to what was observed.
                within = (rank - (seen - count)) / count
                value = lower + (upper - lower) * within
                return min(max(value, self._min_ms), self._max_ms)
        return self._max_ms

    def operations(self) -> OperationCounts:
        """The counters as an :class:`OperationCounts`."""
        return OperationCounts(
            saves=self.counts["saves"],
            loads=self.counts["loads"],
            queries=self.counts["queries"],
            deletes=self.counts["deletes"],
        )

    def performance(self) -> PerformanceMetrics:
        """The latency summary as a :class:`PerformanceMetrics`."""
        if self._n == 0:
            return PerformanceMetrics()
        return PerformanceMetrics(
            avg_latency_ms=self._sum_ms / self._n,
            min_latency_ms=self._min_ms,
            max_latency_ms=self._max_ms,
            p50_latency_ms=self.percentile(0.50),
            p95_latency_ms=self.percentile(0.95),
            p99_latency_ms=self.percentile(0.99),
        )

    def snapshot(self, storage: StorageMetrics) -> StoreMetrics:
        """A :class:`StoreMetrics` of these counters plus ``storage``."""
        return StoreMetrics(
            operations=self.operations(),
            performance=self.performance(),
            storage=storage,
            collected_at=now_utc(),
        )

    def prometheus(self, storage: StorageMetrics | None = None, *, backend: str = "store") -> str:
        """These metrics in the Prometheus text exposition format (version 0.0.4)."""
        label = f'backend="{backend}"'
        lines = [
            "# HELP kode_store_operations_total Store calls by kind.",
            "# TYPE kode_store_operations_total counter",
        ]
        for kind, count in self.counts.items():
            lines.append(f'kode_store_operations_total{{{label},kind="{kind}"}} {count}')
        lines += [
            "# HELP kode_store_method_calls_total Store calls by method.",
            "# TYPE kode_store_method_calls_total counter",
        ]
        for method, count in sorted(self.by_method.items()):
            lines.append(f'kode_store_method_calls_total{{{label},method="{method}"}} {count}')
        lines += [
            "# HELP kode_store_errors_total Store calls that raised.",
            "# TYPE kode_store_errors_total counter",
            f"kode_store_errors_total{{{label}}} {self.errors}",
            "# HELP kode_store_call_duration_seconds Latency of store calls.",
            "# TYPE kode_store_call_duration_seconds histogram",
        ]
        cumulative = 0
        for bound, count in zip(_BUCKET_BOUNDS_MS, self._buckets, strict=False):
            cumulative += count
            lines.append(f'kode_store_call_duration_seconds_bucket{{{label},le="{bound / 1000:.6g}"}} {cumulative}')
        lines.append(f'kode_store_call_duration_seconds_bucket{{{label},le="+Inf"}} {self._n}')
        lines.append(f"kode_store_call_duration_seconds_sum{{{label}}} {self._sum_ms / 1000:.9g}")
        lines.append(f"kode_store_call_duration_seconds_count{{{label}}} {self._n}")
        if storage is not None:
            for name, value in (
                ("agents", storage.total_agents),
                ("messages", storage.total_messages),
                ("tool_calls", storage.total_tool_calls),
            ):
                lines += [f"# TYPE kode_store_{name} gauge", f"kode_store_{name}{{{label}}} {value}"]
            if storage.db_size_bytes is not None:
                lines += [
                    "# TYPE kode_store_db_size_bytes gauge",
                    f"kode_store_db_size_bytes{{{label}}} {storage.db_size_bytes}",
                ]
        return "\n".join(lines) + "\n"
