import json
import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from knowledge.content.oatutor import read_oatutor
from knowledge.services import load_course_package


class Command(BaseCommand):
    help = "Import OATutor content (problems.jsonl or .jsonl.gz) as one course, and report what was skipped."

    def add_arguments(self, parser):
        parser.add_argument("path", help="OATutor problems.jsonl[.gz]")
        parser.add_argument("--course-slug", default="oatutor")
        parser.add_argument("--title", default="OATutor content pool")
        parser.add_argument("--report", help="also write the skip report as JSON to this file")

    def handle(self, path, course_slug, title, report=None, **options):
        quiet = options["verbosity"] < 1
        started = time.perf_counter()
        with tqdm(unit="problem", desc="reading", disable=quiet) as bar:
            package, summary = read_oatutor(
                path, course_slug=course_slug, title=title, progress=lambda done, total: bar.update(done - bar.n)
            )
        if not package["items"]:
            raise CommandError(f"Nothing importable in {path}: {summary['skipped']}")
        with tqdm(total=len(package["items"]), unit="item", desc="saving", disable=quiet) as bar:
            load_course_package(package, progress=lambda done, total: bar.update(done - bar.n))
        summary["seconds"] = round(time.perf_counter() - started, 1)
        if report:
            with open(report, "w") as out:
                json.dump(summary, out, indent=2)
        self.stdout.write(json.dumps(summary, indent=2))
