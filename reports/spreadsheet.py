"""Spreadsheets for Excel in Spanish: XLSX with a bold frozen header, wrapped text, widths
that fit and real date-time cells; CSV with ';' and a BOM (what Excel-es opens in columns).

Every text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
neutralised with a leading apostrophe (OWASP, "CSV injection"): a participant's answer
``=HYPERLINK(…)`` stays text in both formats.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import datetime

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_SEPARATOR = ";"
"""Excel with a Spanish (Chile) locale separates list items with ';' and reads ',' as the
decimal comma: a ','-separated file opens as one column."""
MAX_WIDTH = 60
"""Widest column, in characters; longer texts wrap."""
DATETIME_FORMAT = "dd-mm-yyyy hh:mm:ss"


def neutralise(value: object) -> object:
    """A text that a spreadsheet would read as a formula, prefixed with an apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _cells(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(object).map(neutralise)


def csv(frame: pd.DataFrame) -> bytes:
    """``frame`` as CSV for Excel-es: UTF-8 with a BOM, ';'-separated, CRLF."""
    text = _cells(frame).to_csv(index=False, sep=CSV_SEPARATOR, lineterminator="\r\n")
    return text.encode("utf-8-sig")


def xlsx(sheets: Mapping[str, pd.DataFrame]) -> bytes:
    """One sheet per frame, named by its key (at most 31 characters, Excel's limit)."""
    book = Workbook()
    book.remove(book.active)
    for name, frame in sheets.items():
        _sheet(book, name[:31], frame)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _sheet(book: Workbook, name: str, frame: pd.DataFrame) -> None:
    sheet = book.create_sheet(name)
    sheet.append([str(c) for c in frame.columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    sheet.freeze_panes = "A2"
    widths = [len(str(c)) for c in frame.columns]
    wrap = Alignment(wrap_text=True, vertical="top")
    for row in frame.itertuples(index=False):
        values = [_value(v) for v in row]
        sheet.append(values)
        for i, v in enumerate(values):
            longest = max((len(part) for part in str(v).split("\n")), default=0)
            widths[i] = max(widths[i], 19 if isinstance(v, datetime) else longest)
    for cells in sheet.iter_rows(min_row=2):
        for cell in cells:
            cell.alignment = wrap
            if isinstance(cell.value, datetime):
                cell.number_format = DATETIME_FORMAT
    for i, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = min(MAX_WIDTH, width + 2)


def _value(value: object) -> object:
    """A cell value openpyxl writes as it is: missing → empty, pandas' types → Python's,
    a zone-aware time → its local wall time (Excel has no zones: the header says which)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return neutralise(value)
