from django.core.management.base import BaseCommand, CommandError

from knowledge.content.package import write_package
from knowledge.models import Course
from knowledge.services import export_course_package


class Command(BaseCommand):
    help = "Write a course as a course package (one YAML file)."

    def add_arguments(self, parser):
        parser.add_argument("course", help="course slug")
        parser.add_argument("path", help="output file (.yaml)")

    def handle(self, course, path, **options):
        found = Course.objects.filter(slug=course).first()
        if found is None:
            known = ", ".join(Course.objects.values_list("slug", flat=True)) or "none"
            raise CommandError(f"No course with slug '{course}'. Courses: {known}.")
        package = export_course_package(found)
        write_package(package, path)
        self.stdout.write(f"Wrote '{found.slug}' ({len(package['items'])} items) to {path}.")
