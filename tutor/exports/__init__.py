"""Research exports of the interaction log, in the formats learning scientists' tools read.

Each format is a streaming writer over one query of the log (`log.stream_log`): DataShop transactions, the KDD
Cup student-step rollup, pyBKT's long CSV, pyKT's sequences, xAPI statements and Parquet of the raw log. Learners
appear under keyed-HMAC pseudonyms of the study (`pseudonyms.Pseudonyms`); names, emails and usernames never do,
unless an admin's share includes identities. `write_export` is what the Celery job
(`tutor.tasks.run_export_job`) and `manage.py export_logs` both call. See docs/exports.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tutor.exports import datashop, kdd, parquet, pybkt, pykt, xapi
from tutor.exports.log import LogFilter
from tutor.exports.source import LogSource


@dataclass(frozen=True)
class Format:
    label: str
    extension: str
    content_type: str
    write: Callable
    binary: bool = False


FORMATS = {
    "datashop": Format("DataShop transactions (tab-delimited)", "txt", "text/tab-separated-values", datashop.write),
    "kdd": Format("KDD Cup student-step rollup (tab-delimited)", "txt", "text/tab-separated-values", kdd.write),
    "pybkt": Format("pyBKT long CSV", "csv", "text/csv", pybkt.write),
    "pykt": Format("pyKT sequences (data.txt)", "txt", "text/plain", pykt.write),
    "xapi": Format("xAPI statements (JSON lines)", "jsonl", "application/x-ndjson", xapi.write),
    "parquet": Format(
        "Parquet of the raw log", "parquet", "application/vnd.apache.parquet", parquet.write, binary=True
    ),
}


class ExportError(ValueError):
    """The export cannot run as asked; the message says what to change."""


def write_export(
    format_name: str,
    log_filter: LogFilter,
    path: str | Path,
    *,
    study: str = "default",
    include_identities: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write the filtered log to `path` in one format; returns the rows (pyKT: learners; xAPI: statements)."""
    found = FORMATS.get(format_name)
    if found is None:
        raise ExportError(f"Unknown format {format_name!r}; choose from {', '.join(FORMATS)}.")
    source = LogSource(log_filter, study=study, include_identities=include_identities, progress=progress)
    if found.binary:
        return found.write(source, path)
    with open(path, "w", encoding="utf-8", newline="") as out:
        return found.write(source, out)


__all__ = ["FORMATS", "ExportError", "LogFilter", "write_export"]
