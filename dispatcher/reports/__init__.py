"""Reports (一月一报告): the monthly report's figures, ranking and renderings (DESIGN §7).

Not built yet (issue 8). Will own the report formulas as pure functions over SQL aggregates, the
unit ranking, and the HTML, XLSX, CSV and JSON renderings kept with their period.
"""
