"""Teacher dashboards (tutor.dashboards and its pages): item statistics against a hand-computed example, the
heatmap's bands, order, sorting, goal filter and CSV, the drill-down and the skill graph, and who may see them."""

import asyncio
import csv
import io
import math
from datetime import date, timedelta
from itertools import count
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client
from django.utils import timezone

from knowledge.models import Item, MasteryState, Skill
from tests.conftest import make_user
from tutor import access, dashboards, practice
from tutor.models import Attempt, ClassGoal, Enrollment, HintTurn, PracticeSession

ROOT = Path(__file__).resolve().parents[1]
T0 = timezone.now() - timedelta(days=1)
_keys = count()


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def session_of(learner, classroom) -> PracticeSession:
    return PracticeSession.objects.get_or_create(
        learner=learner, course=classroom.course, classroom=classroom, defaults={"started_at": T0}
    )[0]


def answer(learner, classroom, step, correct, at, shown, hint_level=0):
    return Attempt.objects.create(
        learner=learner,
        session=session_of(learner, classroom),
        item=step.item,
        step=step,
        raw_answer="x",
        correct=correct,
        hint_level=hint_level,
        first_action=False,
        client_key=f"k{next(_keys)}",
        started_at=shown,
        created_at=at,
    )


def hint(learner, classroom, step, level, kind, at):
    return HintTurn.objects.create(
        learner=learner,
        session=session_of(learner, classroom),
        step=step,
        level=level,
        kind=kind,
        text=f"rung {level}",
        client_key=f"h{next(_keys)}",
        created_at=at,
        finished_at=at,
    )


def first_try(learner, classroom, step, right: bool, shown, seconds: float):
    """Right first time: one right answer `seconds` after the item was shown. Not: a wrong answer first, then
    the right one `seconds` after it was shown."""
    if not right:
        answer(learner, classroom, step, False, shown + timedelta(seconds=seconds / 2), shown)
    answer(learner, classroom, step, True, shown + timedelta(seconds=seconds), shown)


# --- item statistics: a hand-computed example ------------------------------------------------------------


@pytest.fixture
def item_example(people, course):
    """Five learners of class A and their first tries (1 right first time, 0 not, - never tried):

        learner  A=add-1  M=mul-1  Z=add-2  T1 T2 (two-step)
        L1         1        0        0      1  1
        L2         1        0        0      1  1
        L3         1        1        0      1  0
        L4         0        1        0      0  0
        L5         0        1        0      -  -

    On A: L1, L2, L3 answer right after 30, 40, 50 s; L4 answers wrong, asks for one hint, then is right at
    100 s (2 answers); L5 climbs the whole ladder (hint, scaffold, worked answer) and then answers right at 200 s
    with hint_level 3, which is not right first time. Carol (class B) answers A wrong: another class, not counted."""
    class_a = people["class_a"]
    learners = [people["alice"], people["bob"]]
    for name in ("lena", "leo", "lisa"):
        learner = make_user(name, "learner")
        Enrollment.objects.create(classroom=class_a, learner=learner)
        learners.append(learner)
    l1, l2, l3, l4, l5 = learners
    steps = {
        slug: Item.objects.get(course=course, slug=slug).steps.order_by("position")
        for slug in ("add-1", "mul-1", "add-2", "two-step")
    }
    a, m, z = steps["add-1"][0], steps["mul-1"][0], steps["add-2"][0]
    t1, t2 = steps["two-step"]
    day = T0
    for learner, seconds in ((l1, 30), (l2, 40), (l3, 50)):
        first_try(learner, class_a, a, True, day, seconds)
    answer(l4, class_a, a, False, day + timedelta(seconds=20), day)
    hint(l4, class_a, a, 1, "hint", day + timedelta(seconds=40))
    answer(l4, class_a, a, True, day + timedelta(seconds=100), day, hint_level=1)
    for level, kind in ((1, "hint"), (2, "scaffold"), (3, "bottom_out")):
        hint(l5, class_a, a, level, kind, day + timedelta(seconds=50 * level))
    answer(l5, class_a, a, True, day + timedelta(seconds=200), day, hint_level=3)
    answer(people["carol"], people["class_b"], a, False, day + timedelta(seconds=5), day)

    shown = day + timedelta(hours=1)
    for learner, right in zip(learners, (0, 0, 1, 1, 1), strict=True):
        first_try(learner, class_a, m, bool(right), shown, 60)
    shown = day + timedelta(hours=2)
    for learner in learners:
        first_try(learner, class_a, z, False, shown, 60)
    shown = day + timedelta(hours=3)
    for learner, (right1, right2) in zip(learners[:4], ((1, 1), (1, 1), (1, 0), (0, 0)), strict=True):
        answer(learner, class_a, t1, bool(right1), shown + timedelta(seconds=10), shown)
        if not right1:
            answer(learner, class_a, t1, True, shown + timedelta(seconds=20), shown)
        answer(learner, class_a, t2, bool(right2), shown + timedelta(seconds=40), shown)
        if not right2:
            answer(learner, class_a, t2, True, shown + timedelta(seconds=80), shown)
    return {"class": class_a}


def by_slug(analysis) -> dict:
    return {row["item"].slug: row for row in analysis["items"]}


def test_item_statistics_match_the_hand_computed_example(item_example):
    items = by_slug(dashboards.item_analysis(item_example["class"]))

    a = items["add-1"]
    # Attempts: 1 + 1 + 1 + 2 + 1 = 6 (carol's is another class's). Right first time: L1, L2, L3 of 5 -> 0.6.
    assert (a["attempts"], a["learners"], a["facility"]) == (6, 5, pytest.approx(0.6))
    # Discrimination: x = A's first try, y = share right first time on the learner's other first tries (M Z T1 T2):
    #   L1: 0 0 1 1 -> 2/4 = .5   L2: 0 0 1 1 -> .5   L3: 1 0 1 0 -> .5   L4: 1 0 0 0 -> .25   L5: 1 0 -> .5
    #   x = 1 1 1 0 0; mean y when x=1: .5, when x=0: (.25 + .5)/2 = .375; mean y = 2.25/5 = .45;
    #   var y = (4 * .25 + .0625)/5 - .45^2 = .2125 - .2025 = .01, sd .1; p = .6, q = .4;
    #   r_pb = (.5 - .375)/.1 * sqrt(.6 * .4) = 1.25 * sqrt(.24) = sqrt(.375) = 0.6124
    assert a["discrimination"] == pytest.approx(math.sqrt(0.375))
    # Hints: L4 and L5 of the 5 who reached it -> .4; the worked answer: L5 -> .2.
    assert (a["hint_rate"], a["bottom_out_rate"]) == (pytest.approx(0.4), pytest.approx(0.2))
    # Time to the first right answer: 30 40 50 100 200 s -> median 50 s.
    assert a["median_seconds"] == 50
    assert a["flags"] == []

    m = items["mul-1"]
    # x = 0 0 1 1 1; y over A Z T1 T2: L1 1 0 1 1 -> .75, L2 .75, L3 1 0 1 0 -> .5, L4 0 0 0 0 -> 0, L5 A Z: 0 0 -> 0
    #   mean y (x=1) = (.5 + 0 + 0)/3 = 1/6; (x=0) = .75; mean y = 2/5 = .4
    #   var y = (.5625 + .5625 + .25)/5 - .16 = .275 - .16 = .115; r_pb = (1/6 - .75)/sqrt(.115) * sqrt(.24) = -0.8427
    assert m["facility"] == pytest.approx(0.6)
    assert m["discrimination"] == pytest.approx((1 / 6 - 0.75) / math.sqrt(0.115) * math.sqrt(0.24))
    assert any("Negative discrimination" in flag for flag in m["flags"])

    z = items["add-2"]
    # Nobody right first time: facility 0, flagged; discrimination undefined (the item's scores do not vary).
    assert (z["facility"], z["discrimination"]) == (0.0, None)
    assert any("Almost nobody" in flag for flag in z["flags"])

    t = items["two-step"]
    # On the item, right first time = right on both steps: L1, L2 of 4 -> .5.
    # y over A M Z: L1 1 0 0 -> 1/3, L2 1/3, L3 1 1 0 -> 2/3, L4 0 1 0 -> 1/3; x = 1 1 0 0
    #   mean y (x=1) = 1/3, (x=0) = 1/2; mean y = 5/12; var y = (3 * 1/9 + 4/9)/4 - 25/144 = 3/144, sd sqrt(3)/12
    #   r_pb = (1/3 - 1/2)/(sqrt(3)/12) * sqrt(.25) = -1/sqrt(3) = -0.5774: negative, but only 4 learners: no flag.
    assert (t["learners"], t["facility"]) == (4, pytest.approx(0.5))
    assert t["discrimination"] == pytest.approx(-1 / math.sqrt(3))
    assert t["flags"] == []
    # Time on the item: to the first right answer on its last step: 40 40 80 80 s -> median 60 s.
    assert t["median_seconds"] == 60
    step1, step2 = t["steps"]
    # Step 2: x = 1 1 0 0; y over A M Z T1: L1 1 0 0 1 -> .5, L2 .5, L3 1 1 0 1 -> .75, L4 0 1 0 0 -> .25;
    #   mean y (x=1) = .5 = mean y (x=0): r_pb = 0.
    assert step2["facility"] == pytest.approx(0.5)
    assert step2["discrimination"] == pytest.approx(0.0)
    # Step 1: right first time L1 L2 L3 of 4; 4 + 2 answers (L4 wrong first).
    assert (step1["facility"], step1["attempts"]) == (pytest.approx(0.75), 5)


def test_the_item_analysis_page_shows_the_numbers_and_flags(item_example, people):
    response = client_for(people["teacher_a"]).get(f"/teach/class/{item_example['class'].pk}/items/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "+0.61" in html and "Negative discrimination" in html and "Almost nobody" in html
    skill = Skill.objects.get(course=item_example["class"].course, slug="multiply")
    only = client_for(people["teacher_a"]).get(f"/teach/class/{item_example['class'].pk}/items/?skill={skill.pk}")
    assert "Multiply 1" in only.content.decode() and "Add 1" not in only.content.decode()
    bad = client_for(people["teacher_a"]).get(f"/teach/class/{item_example['class'].pk}/items/?skill=abc")
    assert bad.status_code == 400


def test_point_biserial_is_undefined_without_variation():
    assert dashboards.point_biserial([(1, 0.5), (1, 0.7)]) is None
    assert dashboards.point_biserial([(1, 0.5), (0, 0.5)]) is None
    assert dashboards.point_biserial([(1, 1.0), (0, 0.0)]) == pytest.approx(1.0)


# --- the heatmap ---------------------------------------------------------------------------------------


@pytest.fixture
def heatmap_class(people, course):
    """Skills stored in the wrong order (equations first), mastery on the band edges."""
    skills = {s.slug: s for s in Skill.objects.filter(course=course)}
    for position, slug in enumerate(("equations", "multiply", "add")):
        Skill.objects.filter(pk=skills[slug].pk).update(position=position)
    values = {
        "alice": {"add": 0.97, "multiply": 0.80},  # equations: not started
        "bob": {"add": 0.50, "multiply": 0.95, "equations": 0.70},
    }
    for name, row in values.items():
        for slug, p in row.items():
            MasteryState.objects.create(
                learner=people[name], skill=skills[slug], p_known=p, observations=4, updated_at=T0
            )
    return {"class": people["class_a"], "skills": skills}


def test_the_heatmap_orders_skills_by_prerequisites_and_bands_each_cell(heatmap_class):
    heatmap = dashboards.class_heatmap(heatmap_class["class"])
    assert [c["skill"].slug for c in heatmap["skills"]] == ["add", "multiply", "equations"]
    bands = {row["learner"].username: [cell.band for cell in row["cells"]] for row in heatmap["rows"]}
    assert bands == {
        "alice": ["proficient", "near", "not-started"],
        "bob": ["needs-help", "proficient", "near"],  # 95 % is proficient, 70 % near: the bands' lower edges
    }
    assert [c["needs_help"] for c in heatmap["skills"]] == [1, 0, 0]


def test_the_heatmap_sorts_by_a_skill_and_filters_by_goal_skills(heatmap_class, people):
    skills = heatmap_class["skills"]
    ascending = dashboards.class_heatmap(heatmap_class["class"], sort=f"skill-{skills['add'].pk}")
    assert [row["learner"].username for row in ascending["rows"]] == ["bob", "alice"]
    by_equations = dashboards.class_heatmap(
        heatmap_class["class"], sort=f"skill-{skills['equations'].pk}", descending=True
    )
    assert [row["learner"].username for row in by_equations["rows"]] == ["bob", "alice"]  # not started last
    ClassGoal.objects.create(classroom=heatmap_class["class"], skill=skills["multiply"], due=date(2030, 1, 1))
    goals = dashboards.class_heatmap(heatmap_class["class"], goals_only=True)
    assert [c["skill"].slug for c in goals["skills"]] == ["multiply"]

    page = client_for(people["teacher_a"]).get(
        f"/teach/class/{heatmap_class['class'].pk}/heatmap/?sort=skill-{skills['add'].pk}"
    )
    html = page.content.decode()
    assert page.status_code == 200
    assert html.index(">bob</a>") < html.index(">alice</a>")
    assert '<td class="pr" data-n="4">97</td>' in html and '<td class="ns">–</td>' in html
    assert 'aria-sort="ascending"' in html and "<caption>" in html


def test_the_heatmap_csv_has_a_row_per_learner_and_blank_for_not_started(heatmap_class, people):
    response = client_for(people["teacher_a"]).get(f"/teach/class/{heatmap_class['class'].pk}/heatmap.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["learner", "username", "add", "multiply", "equations"]
    assert rows[1:] == [["alice", "alice", "0.970", "0.800", ""], ["bob", "bob", "0.500", "0.950", "0.700"]]


def test_the_heatmap_reads_mastery_in_one_query_whatever_the_class_size(
    heatmap_class, people, django_assert_max_num_queries
):
    for i in range(30):
        learner = make_user(f"extra{i}", "learner")
        Enrollment.objects.create(classroom=heatmap_class["class"], learner=learner)
    client = client_for(people["teacher_a"])
    with django_assert_max_num_queries(12):
        assert client.get(f"/teach/class/{heatmap_class['class'].pk}/heatmap/").status_code == 200


# --- drill-down and graph ------------------------------------------------------------------------------


def test_a_drilldown_shows_curves_answers_hints_time_and_reasons(people, course):
    alice, class_a = people["alice"], people["class_a"]
    session = practice.start_session(alice, course.pk)
    step = practice.current_step(session)
    practice.submit_attempt(alice, session.pk, step.pk, "999", "d-1")
    practice.request_hint(alice, session.pk, step.pk, "d-2")
    practice.submit_attempt(alice, session.pk, step.pk, str(step.answer["value"]), "d-3")
    HintTurn.objects.create(  # a message to the tutor and its reply
        learner=alice, session=session, step=step, level=1, kind="hint", source="model", action="reply",
        learner_message="why not 999?", text="What does the question ask?", client_key="d-4",
        created_at=timezone.now(), finished_at=timezone.now(),
    )  # fmt: skip
    page = client_for(people["teacher_a"]).get(f"/teach/class/{class_a.pk}/learner/{alice.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "why not 999?" in html and "What does the question ask?" in html
    assert "<polyline" in html and "<code>999</code>" in html and "Think about what the question asks." in html
    assert session.selection_reason[:30] in html  # the scheduler's reason
    assert "tutor/dashboards.css" in html and "window.print()" in html
    assert "@media print" in (ROOT / "frontend" / "static" / "tutor" / "dashboards.css").read_text()
    data = dashboards.learner_drilldown(class_a, alice, access.selections_for(people["teacher_a"]))
    assert data["attempt_count"] == 2 and data["hint_count"] == 2 and data["visit_count"] == 1
    curve = next(c for c in data["curves"] if c["opportunities"])
    assert curve["opportunities"] == 1  # one first action (the wrong answer) moved mastery


def test_the_live_view_lists_who_practises_now_and_why_they_need_help(people, course):
    now = timezone.now()
    class_a, alice, bob = people["class_a"], people["alice"], people["bob"]
    item = Item.objects.get(course=course, slug="add-1")
    step = item.steps.get()
    quiet = PracticeSession.objects.create(
        learner=alice, course=course, classroom=class_a, started_at=now - timedelta(minutes=20),
        current_item=item, item_started_at=now - timedelta(minutes=9),
    )  # fmt: skip
    answer(alice, class_a, step, False, now - timedelta(minutes=8), quiet.item_started_at)
    MasteryState.objects.create(
        learner=alice, skill=Skill.objects.get(course=course, slug="add"), p_known=0.4, observations=12,
        updated_at=now - timedelta(minutes=8),
    )  # fmt: skip
    PracticeSession.objects.create(  # bob's last action was an hour ago: not practising now
        learner=bob, course=course, classroom=class_a, started_at=now - timedelta(hours=2),
        current_item=item, item_started_at=now - timedelta(hours=1),
    )  # fmt: skip
    rows = dashboards.live_class(class_a, now)
    assert [row["name"] for row in rows] == ["alice"]
    row = rows[0]
    assert (row["item"], row["step"], row["step_count"]) == ("Add 1", 1, 1)
    assert row["item_seconds"] == 9 * 60 and row["idle_seconds"] == 8 * 60
    assert {reason["kind"] for reason in row["needs_help"]} == {"idle", "wheel-spinning"}
    assert any("12 tries at Adding" in reason["text"] for reason in row["needs_help"])


def test_the_skill_graph_page_has_the_graph_and_each_skills_items(people, course):
    page = client_for(people["teacher_a"]).get(f"/teach/class/{people['class_a'].pk}/graph/")
    assert page.status_code == 200
    graph = page.context["graph"]
    assert [n["label"] for n in graph["nodes"]] == ["Adding", "Multiplying", "Equations"]
    assert len(graph["edges"]) == 2
    assert {i["title"] for i in graph["nodes"][0]["items"]} >= {"Add 1", "Add 4"}
    assert "vendor/cytoscape/cytoscape.min.js" in page.content.decode()
    one = client_for(people["teacher_a"]).get(
        f"/teach/class/{people['class_a'].pk}/graph/?learner={people['alice'].pk}"
    )
    assert one.status_code == 200 and one.context["learner"] == people["alice"]


# --- who may see what ----------------------------------------------------------------------------------


def dashboard_urls(classroom, learner) -> list[str]:
    base = f"/teach/class/{classroom.pk}"
    return [
        f"{base}/heatmap/",
        f"{base}/heatmap.csv",
        f"{base}/live/",
        f"{base}/learner/{learner.pk}/",
        f"{base}/items/",
        f"{base}/graph/",
        f"{base}/graph/?learner={learner.pk}",
    ]


def test_a_teacher_sees_only_their_own_classes_dashboards(people):
    own = client_for(people["teacher_a"])
    for url in dashboard_urls(people["class_a"], people["alice"]):
        assert own.get(url).status_code == 200, url
    for url in dashboard_urls(people["class_b"], people["carol"]):
        assert own.get(url).status_code == 404, url


def test_a_teacher_cannot_drill_into_a_learner_outside_their_class(people):
    own = client_for(people["teacher_a"])
    assert own.get(f"/teach/class/{people['class_a'].pk}/learner/{people['carol'].pk}/").status_code == 404
    assert own.get(f"/teach/class/{people['class_a'].pk}/graph/?learner={people['carol'].pk}").status_code == 404


def test_a_learner_gets_none_of_the_teacher_pages(people):
    learner = client_for(people["alice"])
    for url in dashboard_urls(people["class_a"], people["alice"]):
        assert learner.get(url).status_code == 403, url


def test_an_admin_sees_every_class(people):
    admin = make_user("root", "admin")
    for url in dashboard_urls(people["class_b"], people["carol"]):
        assert client_for(admin).get(url).status_code == 200, url


def test_the_live_socket_is_refused_to_another_teacher_and_to_learners(people, transactional_db):
    from tutor.asgi import application

    def cookie(user):
        return f"sessionid={client_for(user).cookies['sessionid'].value}".encode()

    async def connects(cookie: bytes | None) -> bool:
        headers = [(b"origin", b"http://127.0.0.1")] + ([(b"cookie", cookie)] if cookie else [])
        socket = WebsocketCommunicator(application, f"/ws/teach/class/{people['class_a'].pk}/live/", headers=headers)
        connected, _ = await socket.connect(timeout=10)
        if connected:
            await socket.disconnect()
        await sync_to_async(connections.close_all)()
        return connected

    assert asyncio.run(connects(cookie(people["teacher_a"]))) is True
    assert asyncio.run(connects(cookie(people["teacher_b"]))) is False
    assert asyncio.run(connects(cookie(people["alice"]))) is False
    assert asyncio.run(connects(None)) is False
