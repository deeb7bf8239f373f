"""Item previews for authors: the practice page's problem panel for an item, saved or still being edited.

The state has the shape of `tutor.practice.problem_state`, so the preview renders the same template
(tutor/_problem.html) the learner's page does; every authored hint rung is shown, as a learner who climbed
the whole ladder would see it. Nothing here touches a session or the practice log.
"""

import yaml

from knowledge.content.package import load_yaml_value, step_problems
from knowledge.models import Item
from tutor import grading

STEP_PREFIX = "steps"  # the admin's inline formset prefix for Item.steps


def saved_item_steps(item: Item) -> list[dict]:
    return [{"prompt": s.prompt, "answer": s.answer, "hints": s.hints} for s in item.steps.all()]


def posted_item(data) -> tuple[dict, list[dict], list[str]]:
    """The item (title, body) and its steps as they stand in the admin's change form, and what is wrong with
    them (unreadable YAML, a bad answer spec), for the preview to show above the panel."""
    problems = []
    item = {"title": data.get("title", "").strip() or "(no title yet)", "body": data.get("body", "")}
    rows = []
    total = _integer(data.get(f"{STEP_PREFIX}-TOTAL_FORMS"), 0)
    for index in range(min(total, 200)):
        field = f"{STEP_PREFIX}-{index}-"
        if data.get(field + "DELETE") or not any(data.get(field + name, "").strip() for name in ("prompt", "answer")):
            continue
        step = {"prompt": data.get(field + "prompt", ""), "answer": None, "hints": []}
        for name in ("answer", "hints"):
            text = data.get(field + name, "")
            try:
                step[name] = load_yaml_value(text) if text.strip() else step[name]
            except yaml.YAMLError:
                problems.append(f"Step {len(rows) + 1}: the {name} is not valid YAML yet.")
        rows.append((_integer(data.get(field + "position"), index), step))
    steps = [step for _, step in sorted(rows, key=lambda row: row[0])]
    for number, step in enumerate(steps, 1):
        if isinstance(step["answer"], dict) and isinstance(step["hints"], list):
            problems.extend(
                f"Step {number}, {p.removeprefix('step: ').removeprefix('step ')}" for p in step_problems(step)
            )
    return item, steps, problems


def preview_state(item: dict, steps: list[dict], position: int) -> dict:
    """What a learner sees on step `position` (0-based) of the item, with the whole hint ladder open."""
    if not steps:
        return {"session_id": None, "item": None, "reason": "This item has no steps yet: add one to preview it."}
    position = max(0, min(position, len(steps) - 1))
    step = steps[position]
    answer = step["answer"] if isinstance(step["answer"], dict) else {}
    hints = [h for h in step["hints"] if isinstance(h, dict)] if isinstance(step["hints"], list) else []
    return {
        "session_id": None,
        "reason": "Preview: this is how the item looks to a learner. Answers are not checked here.",
        "items_completed": 0,
        "item": {"id": None, "title": item["title"], "body": item["body"], "version": None},
        "steps_done": [
            {"position": i, "prompt": done["prompt"], "answer": _shown_answer(done["answer"])}
            for i, done in enumerate(steps[:position])
        ],
        "step": {
            "id": None,
            "position": position,
            "count": len(steps),
            "prompt": step["prompt"],
            "answer_type": answer.get("type", "text"),
            "choices": answer.get("choices") if answer.get("type") == "choice" else None,
        },
        "hints": [
            {
                "level": level,
                "kind": rung.get("kind", "hint"),
                "text": str(rung.get("text", "")),
                "has_answer": rung.get("kind") == "scaffold",
                "source": "authored",
                "action": "hint",
                "learner_message": "",
                "note": "",
            }
            for level, rung in enumerate(hints, 1)
        ],
        "hints_total": len(hints),
        "hint_level": 0,
        "hint_policy": "authored",
        "tutor_total": 0,
    }


def _shown_answer(spec) -> str:
    try:
        return grading.canonical_answer(spec)
    except Exception:  # an answer still being written; the problem list says what is wrong with it
        return "(no valid answer yet)"


def _integer(value, default: int) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default
