"""The teacher dashboards in headless Chromium (Debian's, driven by Playwright), on the demo server that `make demo`
starts (tests/test_browser.py's fixtures): the demo teacher opens the heatmap, watches the live view while the demo
learner practises in a second browser context and climbs the lesson's hint ladder to the worked answer (which moves
them into "needs help" without a reload), then a drill-down, item analysis and the skill graph. Screenshots go to
artifacts/screenshots/."""

import os
import sqlite3
from pathlib import Path

import pytest

from tests.test_browser import browser, demo_server  # noqa: F401  (fixtures: the demo server and Chromium)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = Path(os.environ.get("TUTOR_ARTIFACTS", ROOT / "artifacts")) / "screenshots"
LEARNER_CLASS = "Algebra 1 · Period 1"  # the demo learner's class (tutor.demo.CLASS_NAMES[0])


def sign_in(page, url, username):
    page.goto(f"{url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "tutor-demo")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda address: "/login/" not in address)


def use_the_lessons_ladder(database: Path) -> int:
    """The learner's class on the lesson's own hints, which end with the worked answer (the policy allows it)."""
    with sqlite3.connect(database) as db:
        db.execute("UPDATE tutor_classroom SET hint_policy = 'authored' WHERE name = ?", (LEARNER_CLASS,))
        return db.execute("SELECT id FROM tutor_classroom WHERE name = ?", (LEARNER_CLASS,)).fetchone()[0]


def test_a_teacher_sees_the_heatmap_live_view_drilldown_items_and_graph(demo_server, browser):  # noqa: F811
    url, database = demo_server
    classroom_id = use_the_lessons_ladder(database)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    teacher_context = browser.new_context(viewport={"width": 1400, "height": 900})
    learner_context = browser.new_context(viewport={"width": 1200, "height": 900})
    teacher = teacher_context.new_page()
    sign_in(teacher, url, "teacher")

    # The class page links the dashboards; the heatmap has a row per learner and a column per skill.
    teacher.click(f"text={LEARNER_CLASS}")
    teacher.click("text=mastery heatmap")
    teacher.wait_for_selector("#heatmap tbody tr")
    rows = teacher.locator("#heatmap tbody tr").count()
    columns = teacher.locator("#heatmap thead th.skill-col").count()
    assert rows >= 3 and columns >= 25
    assert teacher.locator("#heatmap td.pr, #heatmap td.ne, #heatmap td.nh").count() > 0
    teacher.hover("#heatmap tbody tr:first-child td:not(.ns)")
    assert " · " in teacher.get_attribute("#heatmap tbody tr:first-child td:not(.ns)", "title")
    teacher.screenshot(path=SCREENSHOTS / "1-heatmap.png")
    teacher.click("#heatmap thead th.skill-col >> nth=0")  # sort by the first skill
    assert teacher.get_attribute("#heatmap thead th.skill-col >> nth=0", "aria-sort") == "ascending"

    # The live view, then the learner starts practising in another browser.
    teacher.goto(f"{url}/teach/class/{classroom_id}/live/")
    teacher.wait_for_selector("#live-status[data-state=open]")
    learner = learner_context.new_page()
    sign_in(learner, url, "learner")
    learner.click("text=Algebra Foundations")
    learner.click("#practise")
    learner.wait_for_selector(".problem")
    teacher.wait_for_selector("#practising tbody tr:has-text('Lee Learner')", timeout=15_000)
    assert teacher.locator("#needs-help li:has-text('Lee Learner')").count() == 0
    teacher.screenshot(path=SCREENSHOTS / "2-live-practising.png", full_page=True)

    # Help up the lesson's ladder to its worked answer: the teacher's page moves them into "needs help".
    learner.wait_for_function("document.getElementById('hint').textContent.trim().startsWith('Help')")
    turns = 0
    while not learner.is_disabled("#hint"):
        learner.click("#hint")
        turns += 1
        learner.wait_for_function(
            f"document.querySelectorAll('#hints li.tutor-turn[data-source]').length >= {turns}", timeout=30_000
        )
    learner.screenshot(path=SCREENSHOTS / "3-learner-worked-answer.png", full_page=True)
    help_item = teacher.wait_for_selector("#needs-help li:has-text('Lee Learner')", timeout=15_000)
    assert "worked answer" in help_item.inner_text()
    teacher.screenshot(path=SCREENSHOTS / "4-live-needs-help.png", full_page=True)

    # The learner's drill-down, from the live view.
    teacher.click("#needs-help li:has-text('Lee Learner') a")
    teacher.wait_for_selector("#curves")
    assert "Lee Learner" in teacher.inner_text("h1")
    assert teacher.locator(".visit").count() >= 1 and teacher.locator(".hint-turn.bottom_out").count() >= 1
    teacher.screenshot(path=SCREENSHOTS / "5-drilldown.png", full_page=True)
    teacher.emulate_media(media="print")
    assert teacher.is_hidden(".dash-nav")  # the print stylesheet drops the navigation
    teacher.screenshot(path=SCREENSHOTS / "5b-drilldown-print.png", full_page=True)
    teacher.emulate_media(media="screen")

    # Item analysis.
    teacher.click("text=Item analysis")
    teacher.wait_for_selector("#items tbody.item")
    assert teacher.locator("#items tbody.item").count() >= 20
    teacher.screenshot(path=SCREENSHOTS / "6-item-analysis.png")

    # The skill graph: cytoscape draws it; clicking a skill lists its items.
    teacher.click("text=Skill graph")
    teacher.wait_for_selector("#skill-graph[data-ready=true] canvas")
    x, y = teacher.evaluate(
        "() => { const n = window.skillGraph.nodes().filter(n => n.data('items').length)[0];"
        " const p = n.renderedPosition(); return [p.x, p.y]; }"
    )
    box = teacher.locator("#skill-graph").bounding_box()
    teacher.mouse.click(box["x"] + x, box["y"] + y)
    teacher.wait_for_selector("#skill-items li a")
    teacher.screenshot(path=SCREENSHOTS / "7-skill-graph.png")
    teacher.click("#skill-items li a >> nth=0")
    teacher.wait_for_selector("#items tbody.item")
    teacher_context.close()
    learner_context.close()
