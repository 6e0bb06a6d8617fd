"""The report's charts, drawn on the server with matplotlib as SVG (DESIGN §7).

Text stays text (``svg.fonttype: none``), so the reader's browser shows the Chinese with its own
CJK fonts and the page needs nothing from the internet; the font list names the common CJK
families first (the Docker image installs WenQuanYi Micro Hei). Charts are made once, when the
report is generated, and kept with it.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from itertools import pairwise
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from dispatcher.reports.labels import KINDS

CJK_FONTS = [
    "WenQuanYi Micro Hei",
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "Microsoft YaHei",
    "PingFang SC",
    "SimHei",
    "DejaVu Sans",
]
_STYLE: Any = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": CJK_FONTS,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.unicode_minus": False,
    "svg.hashsalt": "zone-dispatch",  # the same data draws the same file
}
_COLOURS = {"clue": "#8c2d19", "complaint": "#2f6690", "enterprise_request": "#3a7d44"}


def _svg(figure: Figure) -> str:
    out = io.StringIO()
    figure.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    text = out.getvalue()
    return text[text.index("<svg") :]  # no XML prolog: the page puts it inline


def intake_by_week(series: Mapping[str, Any]) -> str:
    with plt.rc_context(_STYLE):
        figure, ax = plt.subplots(figsize=(6.4, 3.0))
        weeks = [w[5:] for w in series["weeks"]]
        bottom = [0] * len(weeks)
        for kind, counts in series["intake_by_week"].items():
            ax.bar(weeks, counts, bottom=bottom, label=KINDS[kind], color=_COLOURS.get(kind))
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
        ax.set_title("按周受理量（按类型）")
        ax.set_xlabel("周（起始日）")
        ax.set_ylabel("件")
        ax.legend(frameon=False)
        return _svg(figure)


def handling_days(series: Mapping[str, Any]) -> str:
    edges = series["handling_edges"]
    names = [f"{lo:g}–{hi:g}天" for lo, hi in pairwise(edges)] + [f"{edges[-1]:g}天以上"]
    with plt.rc_context(_STYLE):
        figure, ax = plt.subplots(figsize=(6.4, 3.0))
        ax.bar(names, series["handling_days"], color="#2f6690")
        ax.set_title("办结用时分布（投诉、企业诉求）")
        ax.set_ylabel("件")
        return _svg(figure)


def unit_bars(rows: list[tuple[str, int, int]]) -> str:
    """Per unit: (name, closed on time, late)."""
    rows = rows[:20]
    with plt.rc_context(_STYLE):
        figure, ax = plt.subplots(figsize=(6.4, max(2.0, 0.32 * len(rows) + 1)))
        names = [r[0] for r in rows]
        on_time = [r[1] for r in rows]
        late = [r[2] for r in rows]
        ax.barh(names, on_time, color="#3a7d44", label="按时办结")
        ax.barh(names, late, left=on_time, color="#c0392b", label="超期")
        ax.invert_yaxis()
        ax.set_title("各单位按时办结与超期")
        ax.set_xlabel("件")
        ax.legend(frameon=False, loc="lower right")
        return _svg(figure)


def trend(series: Mapping[str, Any]) -> str:
    months = [m[2:] for m in series["trend_months"]]
    with plt.rc_context(_STYLE):
        figure, ax = plt.subplots(figsize=(6.4, 3.0))
        ax.plot(months, series["trend_received"], marker="o", label="受理", color="#2f6690")
        ax.plot(months, series["trend_closed"], marker="s", label="办结", color="#3a7d44")
        ax.set_title("近12个月受理与办结")
        ax.set_ylabel("件")
        ax.tick_params(axis="x", labelrotation=45)
        ax.legend(frameon=False)
        return _svg(figure)


def heat_map(rows: list[dict[str, Any]], township_names: Mapping[str, str]) -> str | None:
    """Clues and complaints per township × category (政治生态研判)."""
    if not rows:
        return None
    townships = sorted({r["township"] for r in rows})[:15]
    categories = sorted({r["category"] for r in rows})[:12]
    grid = [[0] * len(categories) for _ in townships]
    for r in rows:
        if r["township"] in townships and r["category"] in categories:
            grid[townships.index(r["township"])][categories.index(r["category"])] = r["count"]
    with plt.rc_context(_STYLE):
        figure, ax = plt.subplots(figsize=(6.4, max(2.2, 0.35 * len(townships) + 1.2)))
        image = ax.imshow(grid, cmap="Reds", aspect="auto")
        ax.set_xticks(range(len(categories)), categories, rotation=30, ha="right")
        ax.set_yticks(range(len(townships)), [township_names.get(t, t) for t in townships])
        for i, row in enumerate(grid):
            for j, value in enumerate(row):
                if value:
                    ax.text(j, i, str(value), ha="center", va="center", fontsize=8)
        figure.colorbar(image, ax=ax, shrink=0.8)
        ax.set_title("问题线索与投诉热点（乡镇 × 类别）")
        return _svg(figure)


def draw_all(report: Mapping[str, Any]) -> dict[str, str]:
    """Every chart of ``report`` (``build_report``'s data), by name."""
    series = report["series"]
    names = report["names"]["units"]
    units = report["requests"]["month"]["units"]
    bars = sorted(
        (
            (names.get(code, {}).get("name", code), per["all"]["closed_on_time"], per["all"]["late"])
            for code, per in units.items()
        ),
        key=lambda r: -(r[1] + r[2]),
    )
    charts = {
        "intake_by_week": intake_by_week(series),
        "handling_days": handling_days(series),
        "units_on_time": unit_bars(bars),
        "trend": trend(series),
    }
    heat = heat_map(report["hot_spots"]["rows"], report["names"]["townships"])
    if heat is not None:
        charts["hot_spots"] = heat
    return charts
