"""Reports (一月一报告): the monthly report's figures, ranking and renderings (DESIGN §7).

``queries`` (SQL counts per kind, zone and unit as of a window's end), ``figures`` (the formulas
and the ranking, pure), ``build`` (the report's data), ``charts`` (matplotlib SVG), ``render``
(HTML, XLSX, CSV, JSON), ``labels`` (the report's Chinese words), ``service`` (make it once, read
it, serve its files).
"""
