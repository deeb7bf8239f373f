"""pyBKT's long CSV: one row per skill of each first action on a step (an answer, or a hint request, which counts
as not correct, as in the tutor's own mastery update). Columns are pyBKT's ASSISTments defaults, so
`Model().fit(data_path=...)` reads the file as it is: `order_id` orders the first actions (the skill rows of one
action share it), `template_id` is the item's template (its own name when it has none)."""

import csv

from tutor.exports.source import LogSource

COLUMNS = ["order_id", "user_id", "skill_name", "correct", "template_id"]


def write(source: LogSource, out) -> int:
    content = source.content
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    rows = order = 0
    for event in source.events():
        if not event.first_action:
            continue
        order += 1
        _, slug, _, template, _ = content.items[event.item_id]
        user = source.pseudonyms.learner(event.learner_id)
        correct = 0 if event.is_hint else int(event.correct)
        for skill in source.event_skills(event):
            writer.writerow([order, user, content.skills[skill][1], correct, template or slug])
            rows += 1
    return rows
