from django.core.management.base import BaseCommand
from tqdm import tqdm

from tutor.demo import DEMO_PASSWORD, load_demo


class Command(BaseCommand):
    help = "Load the demo course, demo accounts, two classes and simulated learners' practice history."

    def add_arguments(self, parser):
        parser.add_argument("--learners-per-class", type=int, default=12)
        parser.add_argument("--seed", type=int, default=2026)

    def handle(self, learners_per_class, seed, **options):
        with tqdm(unit="learner", desc="simulating practice", disable=options["verbosity"] < 1) as bar:

            def progress(done: int, total: int):
                bar.total = total
                bar.update(done - bar.n)

            summary = load_demo(learners_per_class, seed, progress=progress)
        self.stdout.write(
            f"Demo course '{summary.course.title}' ready; {summary.simulated_learners} simulated learners "
            f"practised ({summary.attempts} attempts)."
        )
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for username, role in summary.accounts.items():
            self.stdout.write(f"  {role:<11} {username}")
