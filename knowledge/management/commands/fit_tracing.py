import json

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime
from django.utils.timezone import is_naive, make_aware
from tqdm import tqdm

from knowledge import fitting
from knowledge.models import Course


def _moment(text: str | None):
    if not text:
        return None
    moment = parse_datetime(text) or parse_datetime(text + "T00:00:00")
    if moment is None:
        raise CommandError(f"Not a date or date-time: {text!r} (use e.g. 2026-09-01 or 2026-09-01T08:00)")
    return make_aware(moment) if is_naive(moment) else moment


class Command(BaseCommand):
    help = ("Refit a course's knowledge-tracing model from its practice log, store it as a new version, and "
            "(unless --no-activate) use it for every learner's mastery from now on.")

    def add_arguments(self, parser):
        parser.add_argument("--course", required=True, help="course slug")
        parser.add_argument("--model", default="bkt", choices=list(fitting.FITTABLE))
        parser.add_argument("--since", help="only attempts at or after this date (YYYY-MM-DD[THH:MM])")
        parser.add_argument("--until", help="only attempts before this date")
        parser.add_argument("--device", default="auto", help="cpu, cuda or auto (a GPU when there is one)")
        parser.add_argument("--no-activate", action="store_true", help="store the version without applying it")

    def handle(self, *, course, model, since, until, device, no_activate, **options):
        found = Course.objects.filter(slug=course).first()
        if found is None:
            raise CommandError(f"No course with slug {course!r}.")
        try:
            record = fitting.queue_fit(found, model, _moment(since), _moment(until))
            with tqdm(total=100, bar_format="{l_bar}{bar}| {elapsed} {postfix}", disable=options["verbosity"] < 1,
                      desc=f"{found.slug} v{record.version} {model}") as bar:
                def progress(stage, fraction):
                    bar.set_postfix_str(stage, refresh=False)
                    bar.update(round(fraction * 100) - bar.n)

                fitting.run_fit(record, device=device, activate=not no_activate, progress=progress)
        except fitting.FitError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(json.dumps({
            "course": found.slug, "version": record.version, "model": record.model, "active": record.active,
            "device": record.device, "seconds": round(record.duration_seconds, 2), "train_rows": record.train_rows,
            "learners": record.learners, "held_out": record.metrics,
        }, indent=2))
