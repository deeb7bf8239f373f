"""DataShop's tab-delimited transaction format: one row per attempt or hint request.

Column names are DataShop's import format (https://pslcdatashop.web.cmu.edu/help?page=importFormatTd):
several skills of a step are joined with `~~` in `KC (Default)`, and the custom fields `CF (...)` carry what
DataShop has no column for. Times are UTC, `yyyy-MM-dd HH:mm:ss.SSS`.
"""

import csv

from tutor.exports.source import LogSource, datashop_time, seconds, with_steps

KC_SEPARATOR = "~~"
COLUMNS = [
    "Row",
    "Anon Student Id",
    "Session Id",
    "Time",
    "Time Zone",
    "Duration (sec)",
    "Student Response Type",
    "Tutor Response Type",
    "Level (Course)",
    "Problem Name",
    "Problem View",
    "Step Name",
    "Attempt At Step",
    "Outcome",
    "Selection",
    "Action",
    "Input",
    "Feedback Text",
    "Help Level",
    "Total Num Hints",
    "Condition Name",
    "Condition Type",
    "KC (Default)",
    "CF (Skill Previous p-Known)",
    "CF (Skill New p-Known)",
    "CF (First Action)",
    "CF (Item Version)",
    "CF (Policy)",
    "CF (Hint Source)",
    "CF (Hint Model)",
    "CF (Tutor Action)",
    "CF (Class)",
]
IDENTITY_COLUMNS = ["CF (Username)", "CF (Learner Message)"]


def clean(text) -> str:
    """Tabs and line breaks would split a row."""
    return " ".join(str(text).split()) if text else ""


def write(source: LogSource, out) -> int:
    content = source.content
    writer = csv.writer(out, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS + (IDENTITY_COLUMNS if source.include_identities else []))
    rows = 0
    for event, where in with_steps(source.events()):
        rows += 1
        item = content.items[event.item_id]
        step = content.steps[event.step_id]
        changes = source.skill_changes(event)
        skills = [skill for skill, _, _ in changes] or step.skills
        if event.is_hint:
            outcome, student, tutor, action, help_level = "HINT", "HINT_REQUEST", "HINT_MSG", "Hint", event.level
        else:
            outcome = "CORRECT" if event.correct else "INCORRECT"
            student, tutor, action, help_level = "ATTEMPT", "RESULT", "Attempt", ""
        condition = content.conditions.get(event.classroom_id, "")
        row = [
            rows,
            source.pseudonyms.learner(event.learner_id),
            source.pseudonyms.session(event.session_id),
            datashop_time(event.created_at),
            "UTC",
            seconds(where.duration),
            student,
            tutor,
            content.courses[item[0]],
            item[1],
            where.view,
            step.name,
            where.attempt,
            outcome,
            step.name,
            action,
            clean(event.answer),
            clean(event.text),
            help_level,
            step.ladder_length,
            condition,
            "experimental" if condition else "",
            KC_SEPARATOR.join(clean(content.skills[s][1]) for s in skills),
            KC_SEPARATOR.join(f"{before:.6g}" for _, before, _ in changes),
            KC_SEPARATOR.join(f"{after:.6g}" for _, _, after in changes),
            int(event.first_action),
            event.item_version or "",
            event.policy or "",
            event.source,
            event.model,
            event.action,
            source.pseudonyms.classroom(event.classroom_id),
        ]
        if source.include_identities:
            row += [source.username(event.learner_id), clean(source.message(event))]
        writer.writerow(row)
    return rows
