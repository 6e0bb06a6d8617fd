"""The report's files: JSON, CSV, XLSX and HTML, all made from the stored data (``build_report``).

XLSX has one sheet per view with real numbers and number formats (rates as percentages, days
with one decimal, money with two), never numbers as text. CSV is one long table (view, window,
level, code, name, kind, figure, value) for whoever wants to pivot it. HTML is a page in Chinese
with the charts inline (SVG), standalone or as a fragment for the staff pages.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from dispatcher.reports import labels as L

FORMATS = ("html", "xlsx", "csv", "json")
MEDIA_TYPES = {
    "html": "text/html; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}
_NUMBER_FORMATS = {"%": "0.00%", "d": "0.0", "money": "#,##0.00", "score": "0.00", "n": "0"}
_HEADER = Font(bold=True)
_HEADER_FILL = PatternFill("solid", fgColor="E8EEF4")


def unit_name(report: Mapping[str, Any], code: str) -> str:
    if code == "-":
        return L.NONE
    unit = report["names"]["units"].get(code)
    return unit["name"] if unit else code


def zone_name(report: Mapping[str, Any], code: str) -> str:
    if code == "-":
        return L.NONE
    return str(report["names"]["zones"].get(code, code))


def to_json(report: Mapping[str, Any]) -> bytes:
    return json.dumps(report, ensure_ascii=False, indent=1, sort_keys=True).encode()


# -- CSV ------------------------------------------------------------------------------------------


def _long_rows(report: Mapping[str, Any]) -> Iterator[list[Any]]:
    for window, view in report["requests"].items():
        if view is None:
            continue
        yield from _request_rows("requests", window, "total", "", "", view["total"])
        for level, names in (("zones", zone_name), ("units", unit_name)):
            for code, per in view[level].items():
                yield from _request_rows("requests", window, level, code, names(report, code), per)
    for window, view in report["clues"].items():
        if view is None:
            continue
        yield from _figure_rows("clues", window, "total", "", "", "clue", view["total"], L.CLUE_FIGURES)
        for level, names in (("zones", zone_name), ("units", unit_name)):
            for code, figures in view[level].items():
                yield from _figure_rows(
                    "clues", window, level, code, names(report, code), "clue", figures, L.CLUE_FIGURES
                )
    for window, view in report["training"].items():
        yield from _figure_rows("training", window, "total", "", "", "", view["total"], L.TRAINING_FIGURES)
        for level, names in (("zones", zone_name), ("units", unit_name)):
            for code, figures in view[level].items():
                yield from _figure_rows(
                    "training", window, level, code, names(report, code), "", figures, L.TRAINING_FIGURES
                )
    for kind, rows in report["ranking"].items():
        for row in rows:
            yield from _figure_rows(
                f"ranking.{kind}", "month", "units", row["unit"], unit_name(report, row["unit"]), "",
                row, L.RANKING_FIGURES,
            )  # fmt: skip
    for row in report["hot_spots"]["rows"]:
        name = report["names"]["townships"].get(row["township"], row["township"])
        yield [
            "hot_spots",
            "month",
            "townships",
            row["township"],
            name,
            row["category"],
            "count",
            "件数",
            row["count"],
        ]
    yield ["hot_spots", "month", "total", "", "", "clue", "repeated_subjects", "重复被反映人",
           report["hot_spots"]["repeated_subjects"]]  # fmt: skip


def _request_rows(
    view: str, window: str, level: str, code: str, name: str, per: Mapping[str, Any]
) -> Iterator[list[Any]]:
    for kind, figures in per.items():
        yield from _figure_rows(view, window, level, code, name, kind, figures, L.REQUEST_FIGURES)


def _figure_rows(
    view: str, window: str, level: str, code: str, name: str, kind: str,
    figures: Mapping[str, Any], names: Mapping[str, tuple[str, str]],
) -> Iterator[list[Any]]:  # fmt: skip
    for key, (label, _) in names.items():
        if key in figures:
            value = figures[key]
            yield [view, window, level, code, name, kind, key, label.strip(), "" if value is None else value]


def to_csv(report: Mapping[str, Any]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["view", "window", "level", "code", "name", "kind", "figure", "figure_name", "value"])
    writer.writerows(_long_rows(report))
    return ("\ufeff" + out.getvalue()).encode()  # a BOM, so Excel opens the Chinese as UTF-8


# -- XLSX -----------------------------------------------------------------------------------------


def _sheet(book: Workbook, title: str, header: list[str]) -> Worksheet:
    sheet = book.create_sheet(title)
    sheet.append(header)
    for cell in sheet[1]:
        cell.font, cell.fill = _HEADER, _HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    sheet.freeze_panes = "B2"
    return sheet


def _put(sheet: Worksheet, row: list[Any], formats: list[str | None]) -> None:
    sheet.append(row)
    r = sheet.max_row
    for i, fmt in enumerate(formats, start=1):
        if fmt is not None and isinstance(sheet.cell(r, i).value, int | float):
            sheet.cell(r, i).number_format = _NUMBER_FORMATS[fmt]


def _widths(sheet: Worksheet, first: int = 18, rest: int = 11) -> None:
    for i in range(1, sheet.max_column + 1):
        sheet.column_dimensions[get_column_letter(i)].width = first if i <= 2 else rest


def _figure_table(
    sheet: Worksheet, lead: list[str], rows: list[tuple[list[Any], Mapping[str, Any]]],
    names: Mapping[str, tuple[str, str]],
) -> None:  # fmt: skip
    for head, figures in rows:
        _put(
            sheet,
            [*head, *(figures.get(k) for k in names)],
            [None] * len(lead) + [fmt for _, fmt in names.values()],
        )
    _widths(sheet)


def to_xlsx(report: Mapping[str, Any]) -> bytes:
    book = Workbook()
    book.remove(book.active)
    req = report["requests"]
    figure_names = [label.strip() for label, _ in L.REQUEST_FIGURES.values()]

    # 总览: figures down, (window × kind) across
    columns = [(w, k) for w in ("month", "ytd", "last_year") if req.get(w) for k in req[w]["total"]]
    overview = _sheet(book, "总览", ["指标", *(f"{L.WINDOWS[w]}·{L.KINDS.get(k, k)}" for w, k in columns)])
    for key, (label, fmt) in L.REQUEST_FIGURES.items():
        values = [req[w]["total"][k].get(key) for w, k in columns]
        _put(overview, [label.strip(), *values], [None, *([fmt] * len(values))])
    _widths(overview, first=16, rest=14)

    for title, level, names in (("协作区", "zones", zone_name), ("单位", "units", unit_name)):
        sheet = _sheet(book, title, ["名称", "代码", "类型", "范围", *figure_names])
        rows = [
            ([names(report, code), code, L.KINDS.get(kind, kind), L.WINDOWS[w]], figures)
            for w in ("month", "ytd")
            for code, per in req[w][level].items()
            for kind, figures in per.items()
        ]
        _figure_table(sheet, ["名称", "代码", "类型", "范围"], rows, L.REQUEST_FIGURES)

    for kind, title in L.RANKED_KINDS.items():
        sheet = _sheet(book, f"排名·{title}", ["单位", "代码", *(n for n, _ in L.RANKING_FIGURES.values())])
        for row in report["ranking"].get(kind, []):
            values = [row.get(k) for k in L.RANKING_FIGURES]
            if row["rank"] is None:
                values[0] = L.NOT_RANKED
            _put(sheet, [unit_name(report, row["unit"]), row["unit"], *values],
                 [None, None, *(fmt for _, fmt in L.RANKING_FIGURES.values())])  # fmt: skip
        _widths(sheet)

    clue_names = [label.strip() for label, _ in L.CLUE_FIGURES.values()]
    sheet = _sheet(book, "问题线索", ["名称", "代码", "范围", *clue_names])
    rows = []
    for w in ("month", "ytd", "last_year"):
        view = report["clues"].get(w)
        if view is None:
            continue
        rows.append((["合计", "", L.WINDOWS[w]], view["total"]))
        rows += [([zone_name(report, c), c, L.WINDOWS[w]], f) for c, f in view["zones"].items()]
        rows += [([unit_name(report, c), c, L.WINDOWS[w]], f) for c, f in view["units"].items()]
    _figure_table(sheet, ["名称", "代码", "范围"], rows, L.CLUE_FIGURES)

    sheet = _sheet(book, "培训", ["名称", "代码", "范围", *(n for n, _ in L.TRAINING_FIGURES.values())])
    rows = []
    for w, view in report["training"].items():
        rows.append((["合计", "", L.WINDOWS[w]], view["total"]))
        rows += [([unit_name(report, c), c, L.WINDOWS[w]], f) for c, f in view["units"].items()]
    _figure_table(sheet, ["名称", "代码", "范围"], rows, L.TRAINING_FIGURES)

    spots = report["hot_spots"]
    sheet = _sheet(
        book, "热点", ["乡镇（街道）", "类别", "本月", f"上月（{spots['previous_period']}）", "变化"]
    )
    for row in spots["rows"]:
        name = report["names"]["townships"].get(row["township"], row["township"])
        _put(sheet, [name, row["category"], row["count"], row["previous"], row["change"]],
             [None, None, "n", "n", "n"])  # fmt: skip
    _put(sheet, ["重复被反映人（人）", "", spots["repeated_subjects"]], [None, None, "n"])
    _widths(sheet)

    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# -- HTML -----------------------------------------------------------------------------------------

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    extensions=["jinja2.ext.do"],
)


def _value(value: Any, fmt: str) -> str:
    if value is None or value == "":
        return "—"
    if fmt == "%":
        return f"{value * 100:.2f}%"
    if fmt == "d":
        return f"{value:.1f}"
    if fmt == "money":
        return f"{value:,.2f}"
    if fmt == "score":
        return f"{value:.2f}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _change(value: Any, fmt: str) -> str:
    if value is None:
        return "—"
    sign = "+" if value > 0 else ""
    if fmt == "%":
        return f"{sign}{value * 100:.2f}个百分点"
    return f"{sign}{value:g}"


_env.filters["figure"] = _value
_env.filters["change"] = _change
_env.filters["dict_without"] = lambda d, key: {k: v for k, v in d.items() if k != key}


def to_html(
    report: Mapping[str, Any],
    charts: Mapping[str, str],
    *,
    chart_src: Callable[[str], str] | None = None,
) -> str:
    """The report as a whole page with its charts inline, or, given ``chart_src`` (the address of
    each chart), as the body the staff pages put in their layout (charts as images, so the pages'
    Content-Security-Policy needs no inline styles)."""
    return _env.get_template("report.html").render(
        r=report,
        charts={name: Markup(svg) for name, svg in charts.items()},  # our own SVG, drawn by matplotlib
        L=L,
        unit_name=lambda code: unit_name(report, code),
        zone_name=lambda code: zone_name(report, code),
        standalone=chart_src is None,
        chart_src=chart_src,
    )


def render(report: Mapping[str, Any], charts: Mapping[str, str], fmt: str) -> bytes:
    if fmt == "json":
        return to_json(report)
    if fmt == "csv":
        return to_csv(report)
    if fmt == "xlsx":
        return to_xlsx(report)
    return to_html(report, charts).encode()
