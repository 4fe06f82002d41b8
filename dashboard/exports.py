"""CSV and JSON downloads. CSV is streamed row by row, so an export of 100k sessions holds one
chunk of rows in memory, never the whole file."""
from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator

from django.http import HttpResponse, StreamingHttpResponse

# A spreadsheet treats a cell starting with one of these as a formula; transcripts are typed
# by strangers, so such cells are prefixed with a quote (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_lines(columns: list[str], rows: Iterable[list], *, rows_per_chunk: int = 500) -> Iterator[str]:
    """CSV text in chunks of a few hundred rows: few enough writes to the socket, little memory."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for count, row in enumerate(rows, start=1):
        writer.writerow([safe_cell(v) for v in row])
        if count % rows_per_chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _filename(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:150]


def _attachment(response, filename: str):
    response["Content-Disposition"] = f'attachment; filename="{_filename(filename)}"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def streaming_csv(filename: str, columns: list[str], rows: Iterable[list]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(csv_lines(columns, rows), content_type="text/csv; charset=utf-8")
    return _attachment(response, filename)


def csv_download(filename: str, columns: list[str], rows: Iterable[list]) -> HttpResponse:
    response = HttpResponse("".join(csv_lines(columns, rows)), content_type="text/csv; charset=utf-8")
    return _attachment(response, filename)


def json_download(filename: str, document) -> HttpResponse:
    body = json.dumps(document, indent=2, ensure_ascii=False, default=str)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    return _attachment(response, filename)
