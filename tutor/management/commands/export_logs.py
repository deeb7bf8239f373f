import json
import time

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime
from django.utils.timezone import is_naive, make_aware
from tqdm import tqdm

from knowledge.models import Course
from tutor.exports import FORMATS, ExportError, LogFilter, write_export
from tutor.models import Classroom


def _moment(text: str | None):
    if not text:
        return None
    moment = parse_datetime(text) or parse_datetime(text + "T00:00:00")
    if moment is None:
        raise CommandError(f"Not a date or date-time: {text!r} (use e.g. 2026-09-01 or 2026-09-01T08:00)")
    return make_aware(moment) if is_naive(moment) else moment


class Command(BaseCommand):
    help = (
        "Export the interaction log for research (pseudonymous unless --include-identities): DataShop transactions, "
        "the KDD Cup step rollup, pyBKT's long CSV, pyKT sequences, xAPI statements or Parquet. See docs/exports.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", required=True, choices=list(FORMATS))
        parser.add_argument("--output", required=True, help="file to write")
        parser.add_argument("--course", action="append", default=[], help="course slug (repeat for several)")
        parser.add_argument("--classroom", action="append", default=[], type=int, help="class id (repeatable)")
        parser.add_argument("--since", help="only events at or after this date (YYYY-MM-DD[THH:MM], UTC)")
        parser.add_argument("--until", help="only events before this date")
        parser.add_argument("--study", default="default", help="pseudonyms are stable within a study name")
        parser.add_argument(
            "--include-identities", action="store_true", help="add usernames and learners' messages (admins only)"
        )

    def handle(self, *, format, output, course, classroom, since, until, study, include_identities, **options):
        courses = []
        for slug in course:
            found = Course.objects.filter(slug=slug).values_list("id", flat=True).first()
            if found is None:
                raise CommandError(f"No course with slug {slug!r}.")
            courses.append(found)
        missing = set(classroom) - set(Classroom.objects.filter(pk__in=classroom).values_list("id", flat=True))
        if missing:
            raise CommandError(f"No class with id {', '.join(map(str, sorted(missing)))}.")
        log_filter = LogFilter(
            courses=courses or None, classrooms=classroom or None, since=_moment(since), until=_moment(until)
        )
        started = time.perf_counter()
        with tqdm(unit="event", desc=f"export {format}", disable=options["verbosity"] < 1) as bar:

            def progress(done, total):
                bar.total = total
                bar.update(done - bar.n)

            try:
                rows = write_export(
                    format, log_filter, output, study=study, include_identities=include_identities, progress=progress
                )
            except ExportError as error:
                raise CommandError(str(error)) from error
        self.stdout.write(
            json.dumps(
                {"format": format, "output": output, "rows": rows, "seconds": round(time.perf_counter() - started, 2)}
            )
        )
