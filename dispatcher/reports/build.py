"""Assemble the monthly report of one period (DESIGN §7) from the SQL counts.

``build_report`` returns plain data (JSON-ready): every figure per zone, per unit and in total for
the month, the year to date and the same month a year earlier (where that month has data), the
ranking, the clue, training and hot-spot figures and the series the charts draw. The renderings
(``reports.render``, ``reports.charts``) only format it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from dispatcher.db import unit_of_work
from dispatcher.enums import TaskKind
from dispatcher.monthly.periods import Period
from dispatcher.org.model import Org, UnitKind
from dispatcher.reports import figures as fig
from dispatcher.reports import queries as q
from dispatcher.supervision.policy import TimePolicy

#: The key for "no zone" / "no unit" (JSON keys are strings).
NONE = "-"
#: Units ranked, each kind apart (DESIGN §7).
RANKED_KINDS = (UnitKind.township_commission, UnitKind.functional_department)


def _key(value: Any) -> str:
    return NONE if value is None else str(value)


def _windows(period: Period, policy: TimePolicy) -> dict[str, q.Window]:
    tz = policy.tz
    year_ago = period.shift(-12)
    return {
        "month": q.Window(period.start(tz), period.end(tz)),
        "ytd": q.Window(period.year_start(tz), period.end(tz)),
        "last_year": q.Window(year_ago.start(tz), year_ago.end(tz)),
    }


def _grouped(rows: Iterable[Mapping[str, Any]], by: str | None) -> dict[str, list[Mapping[str, Any]]]:
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[_key(row[by]) if by else "total"].append(row)
    return groups


def _request_view(counts: list[dict[str, Any]], overdue: list[dict[str, Any]]) -> dict[str, Any]:
    """Per total / zone / unit, per kind and ``all``: the request figures."""
    view: dict[str, Any] = {}
    for level, by in (("total", None), ("zones", "zone"), ("units", "unit")):
        groups = _grouped(counts, by)
        late = _grouped(overdue, by)
        out: dict[str, Any] = {}
        for name in sorted(set(groups) | set(late)):
            rows, late_rows = groups.get(name, []), late.get(name, [])
            kinds = sorted({r["kind"] for r in rows} | {r["kind"] for r in late_rows})
            per = {
                k: fig.request_figures(
                    fig.add_up([r for r in rows if r["kind"] == k], fig.REQUEST_COUNTS),
                    int(
                        fig.add_up([r for r in late_rows if r["kind"] == k], ["overdue_open"])["overdue_open"]
                    ),
                )
                for k in kinds
            }
            per["all"] = fig.request_figures(
                fig.add_up(rows, fig.REQUEST_COUNTS),
                int(fig.add_up(late_rows, ["overdue_open"])["overdue_open"]),
            )
            out[name] = per
        view[level] = out["total"] if level == "total" and "total" in out else out
    if "all" not in view.get("total", {}):
        view["total"] = {"all": fig.request_figures(fig.add_up([], fig.REQUEST_COUNTS))}
    return view


def _clue_view(rows: list[dict[str, Any]]) -> dict[str, Any]:
    view: dict[str, Any] = {"total": fig.clue_figures(fig.add_up(rows, fig.CLUE_COUNTS))}
    for level, by in (("zones", "zone"), ("units", "unit")):
        view[level] = {
            name: fig.clue_figures(fig.add_up(group, fig.CLUE_COUNTS))
            for name, group in sorted(_grouped(rows, by).items())
        }
    return view


def _training_view(rows: list[dict[str, Any]], org: Org | None) -> dict[str, Any]:
    names = ("issued", "completed", "present", "expected")

    def figures(group: list[Mapping[str, Any]]) -> dict[str, Any]:
        counts = fig.add_up(group, names)
        return {
            **counts,
            "completion_rate": fig.rate(counts["completed"], counts["issued"]),
            "attendance_rate": fig.rate(counts["present"], counts["expected"]),
        }

    zone_of = {u.code: u.zone for u in org.units} if org is not None else {}
    with_zone: list[Mapping[str, Any]] = [{**r, "zone": zone_of.get(r["unit"])} for r in rows]
    return {
        "total": figures(with_zone),
        "zones": {z: figures(g) for z, g in sorted(_grouped(with_zone, "zone").items())},
        "units": {u: figures(g) for u, g in sorted(_grouped(with_zone, "unit").items())},
    }


def _ranking(
    units: Mapping[str, Any], org: Org | None, policy: TimePolicy
) -> dict[str, list[dict[str, Any]]]:
    by_code = org.units_by_code if org is not None else {}
    out: dict[str, list[dict[str, Any]]] = {}
    for kind in RANKED_KINDS:
        members = {
            code: per["all"] for code, per in units.items() if code in by_code and by_code[code].kind is kind
        }
        scores = {code: fig.score(f, policy.ranking) for code, f in members.items()}
        out[kind.value] = [
            {
                "unit": s.unit,
                "rank": s.rank,
                "score": s.score,
                **{
                    k: members[s.unit][k]
                    for k in (
                        "received",
                        "answers",
                        "response_rate",
                        "resolution_rate",
                        "satisfaction_rate",
                        "overdue_rate",
                        "reopen_rate",
                    )
                },
            }
            for s in fig.rank(scores)
        ]
    return out


def _changes(now: Mapping[str, Any], before: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if before is None:
        return None
    keys = ("received", "completion_rate", "on_time_rate", "response_rate", "resolution_rate",
            "satisfaction_rate", "avg_handling_days")  # fmt: skip
    return {k: fig.change(now.get(k), before.get(k)) for k in keys}


def _weeks(w: q.Window, policy: TimePolicy) -> list[datetime]:
    """Week boundaries (Mondays, in the policy's timezone) cut to the window."""
    bounds = [w.start]
    day = w.start.astimezone(policy.tz)
    monday = (day - timedelta(days=day.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    step = monday + timedelta(days=7)
    while step < w.end:
        bounds.append(step)
        step += timedelta(days=7)
    bounds.append(w.end)
    return bounds


def _series(
    session: Session, period: Period, windows: Mapping[str, q.Window], policy: TimePolicy
) -> dict[str, Any]:
    month = windows["month"]
    weeks = _weeks(month, policy)
    kinds = [k.value for k in (TaskKind.clue, TaskKind.complaint, TaskKind.enterprise_request)]
    intake = q.counts_by_kind(session, weeks, "received_at", kinds)
    months = [period.shift(-i) for i in range(11, -1, -1)]
    month_bounds = [m.start(policy.tz) for m in months] + [period.end(policy.tz)]
    return {
        "weeks": [b.astimezone(policy.tz).date().isoformat() for b in weeks[:-1]],
        "intake_by_week": intake,
        "trend_months": [str(m) for m in months],
        "trend_received": q.counts_in(session, month_bounds, "received_at", kinds),
        "trend_closed": q.counts_in(session, month_bounds, "closed_at", kinds),
    }


def _hot_spots(
    session: Session, period: Period, windows: Mapping[str, q.Window], policy: TimePolicy
) -> dict[str, Any]:
    previous = period.shift(-1)
    now = q.hot_spots(session, windows["month"])
    before = {
        (r["township"], r["category"]): r["count"]
        for r in q.hot_spots(session, q.Window(previous.start(policy.tz), previous.end(policy.tz)))
    }
    rows = [
        {
            "township": _key(r["township"]),
            "category": r["category"] or NONE,
            "count": r["count"],
            "previous": before.get((r["township"], r["category"]), 0),
            "change": r["count"] - before.get((r["township"], r["category"]), 0),
        }
        for r in now
    ]
    rows.sort(key=lambda r: (-r["count"], r["township"], r["category"]))
    return {
        "previous_period": str(previous),
        "rows": rows,
        "repeated_subjects": q.repeated_subjects(session, windows["month"]),
    }


def _names(org: Org | None) -> dict[str, Any]:
    if org is None:
        return {"zones": {}, "units": {}, "townships": {}}
    return {
        "zones": {z.code: z.name for z in org.zones},
        "units": {u.code: {"name": u.name, "kind": u.kind.value, "zone": u.zone} for u in org.units},
        "townships": {t.code: t.name for t in org.townships},
    }


@contextmanager
def _reading(engine: sa.Engine) -> Iterator[Session]:
    """A read-only unit of work for one part of the report."""
    with unit_of_work(engine, read_only=True) as session:
        if engine.dialect.name == "postgresql":
            # a handful of analytic statements, each run once: compiling them (JIT) costs more than it saves
            session.execute(sa.text("SET LOCAL jit = off"))
        yield session


#: Parts of the report worked out side by side, each on its own connection.
PARALLEL = 3


def build_report(
    session: Session, period: Period, org: Org | None, policy: TimePolicy, now: datetime
) -> dict[str, Any]:
    """Every figure of ``period`` (as of the end of each window).

    The heavy statements run side by side on their own connections (``PARALLEL``): every figure is
    as of a window's end and read from what does not change after it, so parts read a moment apart
    agree. ``session`` gives the database (its engine).
    """
    windows = _windows(period, policy)
    end = windows["month"].end
    engine = session.get_bind()
    assert isinstance(engine, sa.Engine)

    def part(work: Callable[[Session], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with _reading(engine) as s:
                return work(s)

        return run

    jobs = {
        # the longest first, so it starts at once
        "year": part(lambda s: q.request_counts(s, windows["ytd"], windows["month"].start)),
        "clues": part(lambda s: q.clue_counts(s, windows["ytd"], windows["month"].start)),
        "overdue": part(lambda s: q.overdue_open(s, end, q.REQUEST_KINDS)),
        "hot_spots": part(lambda s: _hot_spots(s, period, windows, policy)),
        "last_year": part(
            lambda s: (
                q.request_counts(s, windows["last_year"]),
                q.overdue_open(s, windows["last_year"].end, q.REQUEST_KINDS),
                q.clue_counts(s, windows["last_year"])[0],
            )
        ),
        "training": part(
            lambda s: (
                q.training_counts(s, [str(period)], end),
                q.training_counts(s, [str(Period(period.year, m)) for m in range(1, period.month + 1)], end),
            )
        ),
        "series": part(lambda s: _series(s, period, windows, policy)),
    }
    with ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="report") as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        got = {name: future.result() for name, future in futures.items()}

    overdue, year = got["overdue"], got["year"]
    month_rows = [r for r in year if r["in_month"]]
    requests: dict[str, Any] = {
        "month": _request_view(month_rows, overdue),
        "ytd": _request_view(year, overdue),
    }
    last_year, last_year_overdue, last_year_clues = got["last_year"]
    requests["last_year"] = _request_view(last_year, last_year_overdue) if last_year else None
    ytd_clues, month_clues = got["clues"]
    clues: dict[str, Any] = {
        "month": _clue_view(month_clues),
        "ytd": _clue_view(ytd_clues),
        "last_year": _clue_view(last_year_clues),
    }
    if not clues["last_year"]["total"]["received"] and not clues["last_year"]["total"]["dispositions"]:
        clues["last_year"] = None
    training = {
        "month": _training_view(got["training"][0], org),
        "ytd": _training_view(got["training"][1], org),
    }
    series = got["series"]
    series["handling_edges"] = list(q.HANDLING_EDGES)
    series["handling_days"] = [
        int(fig.add_up(month_rows, [f"days_{i}"])[f"days_{i}"]) for i in range(len(q.HANDLING_EDGES))
    ]
    last_year_all = requests["last_year"]["total"]["all"] if requests["last_year"] else None
    return {
        "period": str(period),
        "timezone": policy.timezone,
        "generated_at": now.isoformat(),
        "windows": {k: {"start": w.start.isoformat(), "end": w.end.isoformat()} for k, w in windows.items()},
        "names": _names(org),
        "requests": requests,
        "year_on_year": _changes(requests["month"]["total"]["all"], last_year_all),
        "ranking": _ranking(requests["month"]["units"], org, policy),
        "ranking_policy": policy.ranking.model_dump(mode="json"),
        "clues": clues,
        "training": training,
        "hot_spots": got["hot_spots"],
        "series": series,
    }
