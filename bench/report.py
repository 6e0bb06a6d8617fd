"""Figures of a run and their Markdown: percentiles, throughput, the pipeline/baseline ratio."""

from __future__ import annotations

import math
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

#: The pipeline should keep at least this share of bare dramatiq's throughput.
TARGET_RATIO = 0.5


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Measured:
    """``count`` items from the first send (``started``) to the last one done (``finished``)."""

    count: int
    started: float
    finished: float
    latencies: Sequence[float]
    #: CPU seconds used meanwhile, by process role (``api``, ``worker``, ``redis``, ``postgres``, ``bench``).
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def cpu_per_item(self) -> float:
        """CPU seconds of every process measured, per item: what bounds throughput on few cores."""
        return sum(self.cpu.values()) / max(self.count, 1)

    def cpu_text(self) -> str:
        parts = ", ".join(f"{role} {sec / max(self.count, 1) * 1000:.2f}" for role, sec in self.cpu.items())
        cores = len(os.sched_getaffinity(0))
        bound = cores / self.cpu_per_item if self.cpu_per_item else 0
        return (
            f"{parts} = **{self.cpu_per_item * 1000:.2f} ms** of CPU per item "
            f"(at most ~{bound:,.0f}/s on {cores} cores)"
        )

    @property
    def throughput(self) -> float:
        return self.count / max(self.finished - self.started, 1e-9)

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 99)


@dataclass(frozen=True)
class Run:
    """Everything one run measured, and how it was set up."""

    events: int
    clients: int
    processes: int
    threads: int
    mode: str
    batch_size: int
    backend: str
    baseline: Measured
    pipeline: Measured
    #: HTTP round trips as the clients saw them, and intake alone (first send → last answer).
    http: Measured
    #: Server side: event ``accepted_at`` → task created (queue wait + routing).
    routing: Measured
    triage: int
    errors: Sequence[str] = field(default_factory=list)
    when: datetime = field(default_factory=lambda: datetime.now().astimezone())

    @property
    def ratio(self) -> float:
        return self.pipeline.throughput / self.baseline.throughput


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}" if seconds >= 0.01 else f"{seconds * 1000:.1f}"


def machine() -> str:
    return (
        f"{os.cpu_count()} CPU ({len(os.sched_getaffinity(0))} usable), "
        f"Python {sys.version.split()[0]}, {platform.system()} {platform.release()}"
    )


def markdown(run: Run) -> str:
    mode = run.mode if run.mode == "single" else f"batch of {run.batch_size}"
    verdict = "meets" if run.ratio >= TARGET_RATIO else "is under"
    b, p, h, r = run.baseline, run.pipeline, run.http, run.routing
    lines = [
        f"### {run.when:%Y-%m-%d %H:%M %Z} — {run.backend}, N={run.events}, {mode}",
        "",
        f"Machine: {machine()}. Workers `-p {run.processes} -t {run.threads}`, "
        f"{run.clients} HTTP clients (threads), one API process.",
        "",
        "| measure | events/s | p50 ms | p99 ms |",
        "|---|--:|--:|--:|",
        f"| baseline: bare dramatiq no-op (enqueue → done) | {b.throughput:,.0f} "
        f"| {_ms(b.p50)} | {_ms(b.p99)} |",
        f"| pipeline: HTTP send → task dispatched | {p.throughput:,.0f} | {_ms(p.p50)} | {_ms(p.p99)} |",
        f"| — of which HTTP intake (round trip; events/s to the last answer) | {h.throughput:,.0f} "
        f"| {_ms(h.p50)} | {_ms(h.p99)} |",
        f"| — of which accepted → task (queue wait + routing) | | {_ms(r.p50)} | {_ms(r.p99)} |",
        f"| **ratio pipeline / baseline** | **{run.ratio:.3f}** "
        f"| {p.p50 / b.p50:.1f}× | {p.p99 / b.p99:.1f}× |",
        "",
        f"Throughput ratio {run.ratio:.3f} {verdict} the {TARGET_RATIO} target "
        f"(latency columns: pipeline latency ÷ baseline latency). "
        f"{run.triage} of {run.pipeline.count} events went to triage; {len(run.errors)} request error(s).",
        "",
        f"CPU ms per item — baseline: {b.cpu_text()}; pipeline: {p.cpu_text()}.",
        "",
    ]
    return "\n".join(lines)


def append(path: Path, text: str) -> None:
    new = not path.exists()
    with open(path, "a", encoding="utf-8") as f:
        if new:
            f.write(
                "# Benchmark results\n\nAppended by `python -m bench.intake` (see README.md). "
                "Newest last.\n\n"
            )
        f.write(text + "\n")


def finish(text: str, results: Path, *, record: bool, ok: bool) -> int:
    """Print a step's table, append it to ``results`` unless told not to; the exit status."""
    print("\n" + text)
    if record:
        append(results, text)
    return 0 if ok else 1
