"""The raw log as Parquet, one row per attempt or hint turn with every field a study may need, written in row
groups of `ROW_GROUP` rows (memory holds one group at a time). Skills and mastery are lists aligned with each
other: `skills[i]` went from `mastery_before[i]` to `mastery_after[i]`."""

from tutor.exports.source import LogSource, with_steps

ROW_GROUP = 25_000


def schema(include_identities: bool = False):
    """The file's columns (pyarrow is imported here: the web app loads it only when it writes Parquet)."""
    import pyarrow as pa

    fields = pa.schema(
        [
            ("event", pa.string()),
            ("event_id", pa.int64()),
            ("learner", pa.string()),
            ("session", pa.string()),
            ("class", pa.string()),
            ("condition", pa.string()),
            ("course", pa.string()),
            ("problem", pa.string()),
            ("item_version", pa.int32()),
            ("step", pa.string()),
            ("time", pa.timestamp("ms", tz="UTC")),
            ("duration_s", pa.float64()),
            ("problem_view", pa.int32()),
            ("attempt_at_step", pa.int32()),
            ("correct", pa.bool_()),
            ("first_action", pa.bool_()),
            ("help_level", pa.int32()),
            ("ladder_length", pa.int32()),
            ("answer", pa.string()),
            ("text", pa.string()),
            ("hint_source", pa.string()),
            ("hint_model", pa.string()),
            ("tutor_action", pa.string()),
            ("policy", pa.string()),
            ("skills", pa.list_(pa.string())),
            ("mastery_before", pa.list_(pa.float64())),
            ("mastery_after", pa.list_(pa.float64())),
        ]
    )
    if include_identities:
        fields = fields.append(pa.field("username", pa.string())).append(pa.field("learner_message", pa.string()))
    return fields


def write(source: LogSource, path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    content = source.content
    fields = schema(source.include_identities)
    columns: dict[str, list] = {name: [] for name in fields.names}
    rows = 0
    with pq.ParquetWriter(str(path), fields, compression="zstd") as writer:

        def flush():
            writer.write_table(pa.Table.from_pydict(columns, schema=fields))
            for values in columns.values():
                values.clear()

        for event, where in with_steps(source.events()):
            item = content.items[event.item_id]
            step = content.steps[event.step_id]
            changes = source.skill_changes(event)
            skills = [skill for skill, _, _ in changes] or step.skills
            values = (
                event.kind,
                event.id,
                source.pseudonyms.learner(event.learner_id),
                source.pseudonyms.session(event.session_id),
                source.pseudonyms.classroom(event.classroom_id),
                content.conditions.get(event.classroom_id, ""),
                content.courses[item[0]],
                item[1],
                event.item_version,
                step.name,
                event.created_at,
                where.duration,
                where.view,
                where.attempt,
                event.correct,
                event.first_action,
                event.level,
                step.ladder_length,
                event.answer,
                event.text,
                event.source,
                event.model,
                event.action,
                event.policy,
                [content.skills[s][1] for s in skills],
                [b for _, b, _ in changes],
                [a for _, _, a in changes],
            )
            if source.include_identities:
                values += (source.username(event.learner_id), source.message(event))
            for name, value in zip(fields.names, values, strict=True):
                columns[name].append(value)
            rows += 1
            if rows % ROW_GROUP == 0:
                flush()
        if columns["event"]:
            flush()
    return rows
