from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from knowledge.content.package import PackageError, read_package
from knowledge.services import ContentError, load_course_package


class Command(BaseCommand):
    help = "Import (or update) a course from a course package (docs/course-format.md)."

    def add_arguments(self, parser):
        parser.add_argument("path", help="course package file (.yaml, .yml or .json)")

    def handle(self, path, **options):
        try:
            package = read_package(path)
        except PackageError as exc:
            raise CommandError(f"{path} is not a valid course package:\n{exc}") from exc
        with tqdm(total=len(package["items"]), unit="item", desc="importing", disable=options["verbosity"] < 1) as bar:
            try:
                course = load_course_package(package, progress=lambda done, total: bar.update(done - bar.n))
            except ContentError as exc:
                raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Imported '{course.slug}': {len(package['skills'])} skills, {len(package['items'])} items, "
            f"{sum(len(i['steps']) for i in package['items'])} steps."
        )
