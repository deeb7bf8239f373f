"""pyKT's sequence format (the `data.txt` its preprocessors write and `split_datasets` reads): six lines per
learner: `uid,length`, then comma-separated questions, concepts (several joined with `_`), responses,
timestamps (ms since the epoch) and use times (ms spent on the step). First actions only, in time order."""

from tutor.exports.source import LogSource, with_steps


def write(source: LogSource, out) -> int:
    content = source.content
    learners = 0
    learner = None
    lines: list[list[str]] = []

    def flush():
        nonlocal learners
        if learner is None or not lines[0]:
            return
        learners += 1
        out.write(f"{source.pseudonyms.learner(learner)},{len(lines[0])}\n")
        for values in lines:
            out.write(",".join(values) + "\n")

    for event, where in with_steps(source.events()):
        if event.learner_id != learner:
            flush()
            learner, lines = event.learner_id, [[], [], [], [], []]
        if not event.first_action:
            continue
        item = content.items[event.item_id]
        step = content.steps[event.step_id]
        question = item[1] if item[4] == 1 else f"{item[1]}:{step.name}"
        lines[0].append(question.replace(",", ";"))
        lines[1].append("_".join(content.skills[s][0].replace("_", "-") for s in source.event_skills(event)) or "NA")
        lines[2].append("0" if event.is_hint else str(int(event.correct)))
        lines[3].append(str(int(event.created_at.timestamp() * 1000)))
        lines[4].append("NA" if where.duration is None else str(int(where.duration * 1000)))
    flush()
    return learners
