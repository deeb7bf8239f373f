"""The KDD Cup 2010 student-step rollup: one row per step a learner worked in one view of a problem.

Its column names are those pyBKT's Cognitive Tutor preset (`Row`, `Anon Student Id`, `KC(Default)`,
`Correct First Attempt`, `Problem Name`) and pyKT's algebra2005/bridge2algebra2006 preprocessors read. Rows are
aggregated from the learner-ordered stream one step at a time, so memory stays flat.
"""

import csv
from datetime import timedelta

from tutor.exports.datashop import KC_SEPARATOR, clean
from tutor.exports.source import LogSource, datashop_time, seconds, with_steps

COLUMNS = [
    "Row",
    "Anon Student Id",
    "Problem Hierarchy",
    "Problem Name",
    "Problem View",
    "Step Name",
    "Step Start Time",
    "First Transaction Time",
    "Correct Transaction Time",
    "Step End Time",
    "Step Duration (sec)",
    "Correct Step Duration (sec)",
    "Error Step Duration (sec)",
    "Correct First Attempt",
    "Incorrects",
    "Hints",
    "Corrects",
    "KC(Default)",
    "Opportunity(Default)",
]


class _Step:
    __slots__ = ("key", "first", "start", "end", "correct_at", "incorrects", "hints", "corrects", "skills")

    def __init__(self, key, event, duration, skills):
        self.key = key
        self.first = event
        self.start = event.created_at if duration is None else event.created_at - timedelta(seconds=duration)
        self.end = event.created_at
        self.correct_at = None
        self.incorrects = self.hints = self.corrects = 0
        self.skills = skills

    def add(self, event):
        self.end = event.created_at
        if event.is_hint:
            self.hints += 1
        elif event.correct:
            self.corrects += 1
            self.correct_at = self.correct_at or event.created_at
        else:
            self.incorrects += 1


def write(source: LogSource, out) -> int:
    content = source.content
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    writer.writerow(COLUMNS)
    rows = 0
    opportunities: dict[int, int] = {}
    learner = None
    pending: _Step | None = None

    def flush(step: _Step):
        nonlocal rows
        rows += 1
        event = step.first
        item = content.items[event.item_id]
        names = [clean(content.skills[s][1]) for s in step.skills]
        counts = []
        for skill in step.skills:
            opportunities[skill] = opportunities.get(skill, 0) + 1
            counts.append(str(opportunities[skill]))
        total = (step.end - step.start).total_seconds()
        correct_first = int(not event.is_hint and bool(event.correct))
        writer.writerow(
            [
                rows,
                source.pseudonyms.learner(event.learner_id),
                f"course {content.courses[item[0]]}",
                item[1],
                step.key[3],
                content.steps[event.step_id].name,
                datashop_time(step.start),
                datashop_time(event.created_at),
                datashop_time(step.correct_at),
                datashop_time(step.end),
                seconds(total),
                seconds(total if correct_first else None),
                seconds(None if correct_first else total),
                correct_first,
                step.incorrects,
                step.hints,
                step.corrects,
                KC_SEPARATOR.join(names),
                KC_SEPARATOR.join(counts),
            ]
        )

    for event, where in with_steps(source.events()):
        key = (*where.view_key, event.step_id)
        if pending is not None and pending.key != key:
            flush(pending)
            pending = None
        if event.learner_id != learner:
            learner, opportunities = event.learner_id, {}
        if pending is None:
            pending = _Step(key, event, where.duration, source.event_skills(event))
        pending.add(event)
    if pending is not None:
        flush(pending)
    return rows
