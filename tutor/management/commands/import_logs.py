import json
import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from tutor.exports.importing import LogImportError, import_log


class Command(BaseCommand):
    help = (
        "Import an outside interaction log (an ASSISTments-style CSV, plain or .gz, or a DataShop transaction file) "
        "as a new course with its learners and attempts, so the tracing engine can be fitted on it. Rows that "
        "cannot be imported are reported by line number and skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="the log file")
        parser.add_argument("--course", required=True, help="slug of the new course")
        parser.add_argument("--title", default="", help="its title")
        parser.add_argument("--format", default="auto", choices=["auto", "assistments", "datashop"])
        parser.add_argument("--report", help="also write the report (with the skipped lines) as JSON to this file")

    def handle(self, path, *, course, title, format, report=None, **options):
        started = time.perf_counter()
        with tqdm(unit="event", desc="importing", disable=options["verbosity"] < 1) as bar:
            try:
                result = import_log(path, course, title, format, progress=lambda done: bar.update(done - bar.n))
            except LogImportError as error:
                raise CommandError(str(error)) from error
        summary = result.as_dict() | {"seconds": round(time.perf_counter() - started, 1)}
        if report:
            with open(report, "w") as out:
                json.dump(summary, out, indent=2)
        for bad in result.bad_rows[:20]:
            self.stderr.write(f"line {bad.line}: {bad.reason} (skipped)")
        if result.bad_row_count > 20:
            self.stderr.write(f"... and {result.bad_row_count - 20} more skipped lines (see --report)")
        summary["bad_row_examples"] = summary["bad_row_examples"][:20]
        self.stdout.write(json.dumps(summary, indent=2))
