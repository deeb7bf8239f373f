"""The teacher dashboards on a large class: the mastery heatmap of 300 learners × 60 skills must render in under
a second. Also times the heatmap's CSV, item analysis, the skill graph and the live view on the same class.

    python benchmarks/dashboards.py --json benchmarks/results/dashboards.json
    python benchmarks/dashboards.py --database-url postgres://postgres@127.0.0.1:5432/dashboards_bench

The class is made up (a 60-skill prerequisite DAG, two items a skill, 300 learners who have started about 80 % of
the skills, and a practice log of --attempts-per-learner answers each) in its own database: SQLite under /tmp
unless --database-url is given (that database is emptied first), never the app's. Each page is timed through
Django's test client (the server's whole render: queries, template, response), and the heatmap also in headless
Chromium (Debian's, through Playwright) from navigation to the load event, against `manage.py runserver`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TEACHER_PASSWORD = "bench-teacher"


def build_class(n_learners: int, n_skills: int, items_per_skill: int, attempts_per_learner: int, seed: int):
    """A course, a teacher, one class with its learners, their mastery and practice log (bulk inserts)."""
    from django.utils import timezone

    from knowledge.models import Course, Item, ItemSkill, MasteryState, Prerequisite, Skill, Step
    from tutor.models import Attempt, ClassGoal, Classroom, Enrollment, PracticeSession, User

    rng = random.Random(seed)
    now = timezone.now()
    course = Course.objects.create(slug="dashboards-bench", title="Dashboards benchmark")
    skills = Skill.objects.bulk_create(
        [Skill(course=course, slug=f"s{k}", name=f"Skill {k:02d}", position=k) for k in range(n_skills)]
    )
    edges = {(rng.randrange(k), k) for k in range(1, n_skills) for _ in range(rng.choice((1, 1, 2)))}
    Prerequisite.objects.bulk_create([Prerequisite(prerequisite=skills[a], skill=skills[b]) for a, b in sorted(edges)])
    items = Item.objects.bulk_create(
        [
            Item(course=course, slug=f"i{k}-{j}", title=f"Item {k}.{j}")
            for k in range(n_skills)
            for j in range(items_per_skill)
        ]
    )
    ItemSkill.objects.bulk_create(
        [ItemSkill(item=item, skill=skills[i // items_per_skill]) for i, item in enumerate(items)]
    )
    steps = Step.objects.bulk_create(
        [
            Step(item=item, position=0, prompt="?", answer_type="numeric", answer={"type": "numeric", "value": 1})
            for item in items
        ]
    )
    teacher = User(username="bench-teacher", role=User.Role.TEACHER)
    teacher.set_password(TEACHER_PASSWORD)
    teacher.save()
    classroom = Classroom.objects.create(name="Bench class", course=course, teacher=teacher, join_code="BENCH1")
    ClassGoal.objects.bulk_create(
        [ClassGoal(classroom=classroom, skill=skills[k], due=now.date()) for k in range(0, n_skills, 6)]
    )
    learners = User.objects.bulk_create(
        [
            User(username=f"learner{i:03d}", first_name=f"Learner{i:03d}", last_name="Bench", password="!")
            for i in range(n_learners)
        ]
    )
    Enrollment.objects.bulk_create([Enrollment(classroom=classroom, learner=learner) for learner in learners])
    states = []
    for learner in learners:
        for skill in skills:
            if rng.random() < 0.8:
                p = rng.betavariate(2, 1)
                states.append(
                    MasteryState(
                        learner=learner,
                        skill=skill,
                        p_known=p,
                        observations=rng.randint(1, 15),
                        correct=0,
                        updated_at=now,
                    )
                )
    MasteryState.objects.bulk_create(states, batch_size=5000)
    sessions = PracticeSession.objects.bulk_create(
        [
            PracticeSession(
                learner=learner,
                course=course,
                classroom=classroom,
                started_at=now - timedelta(days=7),
                ended_at=now - timedelta(days=7, minutes=-30),
            )
            for learner in learners
        ]
    )
    attempts = []
    for learner, session in zip(learners, sessions, strict=True):
        clock = session.started_at
        for n in range(attempts_per_learner):
            step = rng.choice(steps)
            clock += timedelta(seconds=rng.randint(10, 90))
            attempts.append(
                Attempt(
                    learner=learner,
                    session=session,
                    item_id=step.item_id,
                    step=step,
                    raw_answer="1",
                    correct=rng.random() < 0.7,
                    hint_level=0,
                    first_action=True,
                    client_key=f"b{n}",
                    started_at=clock - timedelta(seconds=30),
                    created_at=clock,
                )
            )
    Attempt.objects.bulk_create(attempts, batch_size=5000)
    # A few learners practising now, for the live view.
    live = PracticeSession.objects.bulk_create(
        [
            PracticeSession(
                learner=learner,
                course=course,
                classroom=classroom,
                started_at=now - timedelta(minutes=10),
                current_item=items[0],
                item_started_at=now - timedelta(minutes=2),
            )
            for learner in learners[:30]
        ]
    )
    return {
        "classroom": classroom,
        "teacher": teacher,
        "states": len(states),
        "attempts": len(attempts),
        "live_sessions": len(live),
        "edges": len(edges),
    }


def time_page(client, url: str, repeat: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    timings = []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            timings.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
    return {
        "median_s": round(statistics.median(timings), 4),
        "max_s": round(max(timings), 4),
        "queries": len(queries),
        "bytes": len(response.content),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_in_chromium(database_url: str, classroom_id: int, repeat: int) -> dict | None:
    """Navigation start to the load event of the heatmap in headless Chromium, against runserver on the bench
    database. None when Chromium or Playwright is missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if chromium is None:
        return None
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    env["DATABASE_URL"] = database_url
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/login/", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("runserver did not come up for the browser timing") from None
                time.sleep(0.3)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{url}/login/")
            page.fill("#id_username", "bench-teacher")
            page.fill("#id_password", TEACHER_PASSWORD)
            page.keyboard.press("Enter")
            page.wait_for_url(f"{url}/teach/")
            loads, responses = [], []
            for _ in range(repeat + 1):  # the first load warms the server's caches and static files
                page.goto(f"{url}/teach/class/{classroom_id}/heatmap/", wait_until="load")
                timing = page.evaluate(
                    "() => { const n = performance.getEntriesByType('navigation')[0];"
                    " return [n.loadEventEnd - n.startTime, n.responseEnd - n.startTime]; }"
                )
                loads.append(timing[0] / 1000)
                responses.append(timing[1] / 1000)
            cells = page.evaluate("document.querySelectorAll('#heatmap tbody td').length")
            browser.close()
        return {
            "load_median_s": round(statistics.median(loads[1:]), 4),
            "load_max_s": round(max(loads[1:]), 4),
            "response_end_median_s": round(statistics.median(responses[1:]), 4),
            "cells": cells,
        }
    finally:
        server.terminate()
        server.wait(timeout=20)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=300)
    parser.add_argument("--skills", type=int, default=60)
    parser.add_argument("--items-per-skill", type=int, default=2)
    parser.add_argument("--attempts-per-learner", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--database-url", default="sqlite:////tmp/tutor-dashboards-bench.sqlite3")
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "dashboards.json")
    args = parser.parse_args(argv)

    if args.database_url.startswith("sqlite:///"):
        Path(args.database_url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    if connection.vendor == "postgresql":
        call_command("flush", "--noinput", verbosity=0)
    call_command("migrate", "--noinput", verbosity=0)

    started = time.perf_counter()
    built = build_class(args.learners, args.skills, args.items_per_skill, args.attempts_per_learner, args.seed)
    print(
        f"built the class in {time.perf_counter() - started:.1f} s: {args.learners} learners, {args.skills} skills, "
        f"{built['states']:,} mastery rows, {built['attempts']:,} attempts",
        file=sys.stderr,
    )
    classroom = built["classroom"]
    client = Client()
    client.force_login(built["teacher"])
    base = f"/teach/class/{classroom.pk}"
    pages = {
        "heatmap": f"{base}/heatmap/",
        "heatmap, sorted by a skill": f"{base}/heatmap/?sort=skill-{classroom.course.skills.last().pk}&desc=1",
        "heatmap, goal skills": f"{base}/heatmap/?goals=1",
        "heatmap CSV": f"{base}/heatmap.csv",
        "item analysis": f"{base}/items/",
        "skill graph": f"{base}/graph/",
        "live view": f"{base}/live/",
    }
    client.get(pages["heatmap"])  # warm-up: templates compiled, connection open
    server = {name: time_page(client, url, args.repeat) for name, url in pages.items()}
    browser = None if args.no_browser else time_in_chromium(args.database_url, classroom.pk, max(3, args.repeat // 2))

    result = {
        "learners": args.learners,
        "skills": args.skills,
        "prerequisite_edges": built["edges"],
        "mastery_rows": built["states"],
        "attempts": built["attempts"],
        "database": connection.vendor,
        "repeat": args.repeat,
        "server_render": server,
        "chromium_heatmap": browser,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_1m_5m_15m": [round(x, 2) for x in os.getloadavg()],  # other work on the machine meanwhile
        },
    }
    print(
        f"\nDashboards of a class of {args.learners} learners × {args.skills} skills on {connection.vendor} "
        f"({built['attempts']:,} attempts), median of {args.repeat}; load average meanwhile "
        f"{result['machine']['load_average_1m_5m_15m'][0]} on {os.cpu_count()} CPUs:\n"
    )
    print("| page | median s | max s | queries | KB |\n|---|---|---|---|---|")
    for name, row in server.items():
        print(f"| {name} | {row['median_s']:.3f} | {row['max_s']:.3f} | {row['queries']} | {row['bytes'] // 1024} |")
    if browser:
        print(
            f"\nHeatmap in headless Chromium, navigation to load event: median {browser['load_median_s']:.3f} s "
            f"(max {browser['load_max_s']:.3f} s; response received by {browser['response_end_median_s']:.3f} s; "
            f"{browser['cells']:,} cells)"
        )
    else:
        print("\nHeatmap in Chromium: not timed (--no-browser, or Chromium/Playwright missing)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
