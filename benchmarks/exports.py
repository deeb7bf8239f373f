"""Research exports of a large practice log: each format's time and peak memory, and the ASSISTments 2009 round trip
(import the whole file, export it in the pyBKT view, compare the row counts).

    nice python benchmarks/exports.py --attempts 1000000 --json benchmarks/results/exports-1m-sqlite.json
    python benchmarks/exports.py --database-url postgres://postgres@127.0.0.1:5432/exports_bench --json ...

The log is simulated as in benchmarks/refit.py (same generator and writer: one or two skills per step, one first
action per attempt) into its own database (SQLite under /tmp unless --database-url is given; that database is
emptied first unless --reuse), never the app's. Each format runs in a fresh process, so that its peak resident
memory (the whole process: Python, Django and the writer) is its own; the table also gives the memory the process
held before the export began, to show what the export itself added.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FORMATS = ["datashop", "kdd", "pybkt", "pykt", "xapi", "parquet"]
ASSIST2009 = Path(os.environ.get("TUTOR_SHARED_DATA", ROOT.parent / "shared" / "data")) / "kt" / "assist2009.csv.gz"


def setup_django(database_url: str):
    os.environ["DATABASE_URL"] = database_url
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor.settings")
    import django

    django.setup()


def memory_mb(field: str = "VmRSS") -> float:
    """This process's resident memory now (VmRSS) or at its peak (VmHWM). Not getrusage's ru_maxrss: Linux keeps
    that across exec, so a child would report its parent's peak."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(args) -> None:
    """One export in this process; prints a JSON line with its figures."""
    setup_django(args.database_url)
    from knowledge.models import Course
    from tutor.exports import FORMATS as WRITERS
    from tutor.exports import LogFilter, write_export

    course = Course.objects.get(slug=args.course)
    out = Path(args.out_dir) / f"export.{WRITERS[args.child].extension}"
    if args.child == "parquet":
        import pyarrow  # noqa: F401 (loaded before the baseline, like Django: not the export's own memory)
    baseline = memory_mb()
    started = time.perf_counter()
    rows = write_export(args.child, LogFilter(courses=[course.pk]), out, study="benchmark")
    seconds = time.perf_counter() - started
    peak = memory_mb("VmHWM")
    print(
        json.dumps(
            {
                "format": args.child,
                "rows": rows,
                "seconds": round(seconds, 2),
                "peak_rss_mb": round(peak, 1),
                "rss_before_export_mb": round(baseline, 1),
                "file_mb": round(out.stat().st_size / 1e6, 1),
            }
        )
    )
    out.unlink()


def run_child(args, format_name: str, course: str) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        format_name,
        "--course",
        course,
        "--database-url",
        args.database_url,
        "--out-dir",
        args.out_dir,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{format_name} export failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=1_000_000)
    parser.add_argument("--per-learner", type=int, default=200)
    parser.add_argument("--skills", type=int, default=60)
    parser.add_argument("--items", type=int, default=600)
    parser.add_argument("--database-url", default="sqlite:////tmp/tutor-exports-bench.sqlite3")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--assist", type=Path, default=ASSIST2009, help="ASSISTments 2009 file for the round trip")
    parser.add_argument("--no-assist", action="store_true", help="skip the ASSISTments round trip")
    parser.add_argument("--reuse", action="store_true", help="keep the database's logs from an earlier run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default="/tmp")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--course", default="exports-bench", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)

    if args.database_url.startswith("sqlite:///") and not args.reuse:
        Path(args.database_url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    setup_django(args.database_url)
    from django.core.management import call_command
    from django.db import connection

    from benchmarks.refit import simulate, write_simulated_log
    from knowledge.models import Course
    from tutor.exports.importing import import_log
    from tutor.models import Attempt

    if connection.vendor == "postgresql" and not args.reuse:
        call_command("flush", "--noinput", verbosity=0)
    call_command("migrate", "--noinput", verbosity=0)

    result = {"attempts": args.attempts, "database": connection.vendor, "formats": {}}
    course = Course.objects.filter(slug="exports-bench").first()
    if course is None or Attempt.objects.filter(item__course=course).count() != args.attempts:
        if course is not None:
            raise SystemExit("the database holds a different log: run without --reuse")
        n_learners = args.attempts // args.per_learner
        print(f"simulating {n_learners:,} learners x {args.per_learner} attempts", file=sys.stderr)
        learner, item, correct, item_skills, _ = simulate(
            n_learners, args.per_learner, args.skills, args.items, args.seed
        )
        course = Course.objects.create(slug="exports-bench", title="Exports benchmark")
        started = time.perf_counter()
        write_simulated_log(course, learner, item, correct, item_skills, args.skills)
        result["write_log_seconds"] = round(time.perf_counter() - started, 1)

    for format_name in args.formats.split(","):
        print(f"exporting {format_name}", file=sys.stderr)
        result["formats"][format_name] = run_child(args, format_name, "exports-bench")

    if not args.no_assist and args.assist.exists():
        print(f"importing {args.assist}", file=sys.stderr)
        Course.objects.filter(slug="assist2009-bench").delete()
        started = time.perf_counter()
        report = import_log(args.assist, "assist2009-bench")
        import_seconds = time.perf_counter() - started
        exported = run_child(args, "pybkt", "assist2009-bench")
        result["assist2009_round_trip"] = {
            "file_rows": sum(1 for _ in _lines(args.assist)) - 1,
            "attempts_imported": report.attempts,
            "bad_rows": report.bad_row_count,
            "learners": report.learners,
            "import_seconds": round(import_seconds, 1),
            "pybkt_rows_exported": exported["rows"],
            "export_seconds": exported["seconds"],
            "round_trip_seconds": round(import_seconds + exported["seconds"], 1),
        }

    print(f"\nExports of {args.attempts:,} attempts on {connection.vendor} (each format in a fresh process):\n")
    print("| format | rows written | seconds | peak RSS (MB) | RSS before export (MB) | file (MB) |")
    print("|---|---|---|---|---|---|")
    for name, figures in result["formats"].items():
        print(
            f"| {name} | {figures['rows']:,} | {figures['seconds']:.1f} | {figures['peak_rss_mb']:.0f} | "
            f"{figures['rss_before_export_mb']:.0f} | {figures['file_mb']:.1f} |"
        )
    if "assist2009_round_trip" in result:
        trip = result["assist2009_round_trip"]
        print(
            f"\nASSISTments 2009: {trip['file_rows']:,} rows in the file, {trip['attempts_imported']:,} attempts "
            f"imported ({trip['bad_rows']} bad rows) in {trip['import_seconds']:.1f} s; the pyBKT export gave "
            f"{trip['pybkt_rows_exported']:,} rows in {trip['export_seconds']:.1f} s "
            f"(round trip {trip['round_trip_seconds']:.1f} s)."
        )
    if args.json:
        result["environment"] = {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg(),
            "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv),
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")


def _lines(path: Path):
    import gzip

    with gzip.open(path, "rt") if path.suffix == ".gz" else open(path) as fh:
        yield from fh


if __name__ == "__main__":
    main()
