"""Writes to the course content: loading and exporting course packages, editing the skill graph.

A course package (docs/course-format.md) arrives here as the normalised dict that
`knowledge.content.package.read_package` or the OATutor importer returns.
"""

from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from knowledge import graph
from knowledge.content.package import PackageError, dump_package, normalise_package, package_warnings, read_package_text
from knowledge.models import ContentJob, Course, Item, ItemSkill, Prerequisite, Skill, Step

FORMAT = "tutor-course/1"
BKT_FIELDS = ("p_init", "p_learn", "p_guess", "p_slip", "p_forget")
ITEM_FIELDS = ("title", "body", "difficulty", "template", "source", "license")

Progress = Callable[[int, int], None]


class ContentError(ValueError):
    """A change to course content that would break the course or lose learners' history."""


def _step_fields(step: dict) -> dict:
    return {
        "prompt": step["prompt"],
        "answer_type": step["answer"]["type"],
        "answer": step["answer"],
        "hints": step.get("hints", []),
    }


def _item_fields(item: dict) -> dict:
    return {
        "title": item["title"],
        "body": item.get("body", ""),
        "difficulty": item.get("difficulty"),
        "template": item.get("template") or "",
        "source": item.get("source", ""),
        "license": item.get("license", ""),
    }


def _item_as_package(item: Item, skill_slugs: list[str], steps: list[Step], step_skills: dict) -> dict:
    return {
        "slug": item.slug,
        **{field: getattr(item, field) for field in ITEM_FIELDS},
        "template": item.template or None,
        "skills": skill_slugs,
        "steps": [
            {
                "prompt": s.prompt,
                "answer": s.answer,
                "skills": step_skills.get(s.pk) or skill_slugs,
                "hints": s.hints,
            }
            for s in steps
        ],
    }


@transaction.atomic
def load_course_package(package: dict, progress: Progress | None = None) -> Course:
    """Create or update a course from a package. Re-loading updates in place, matched by slugs:
    learners' attempts and mastery are kept, and an item whose content changed gets a new version."""
    if package.get("format") != FORMAT:
        raise ContentError(f"unsupported package format {package.get('format')!r}; expected {FORMAT!r}")
    meta = package["course"]
    course, _ = Course.objects.update_or_create(
        slug=meta["slug"],
        defaults={
            "title": meta["title"],
            "description": meta.get("description", ""),
            "language": meta.get("language", "en"),
        },
    )
    skills = _load_skills(course, package["skills"])
    _load_items(course, package["items"], skills, progress)
    return course


def _load_skills(course: Course, skill_rows: list[dict]) -> dict[str, Skill]:
    edges = [(req, row["slug"]) for row in skill_rows for req in row.get("requires", [])]
    order = graph.topological_order([row["slug"] for row in skill_rows], edges)
    position = {slug: i for i, slug in enumerate(order)}
    skills = {}
    for row in skill_rows:
        bkt = row.get("bkt") or {}
        skills[row["slug"]], _ = Skill.objects.update_or_create(
            course=course,
            slug=row["slug"],
            defaults={
                "name": row["name"],
                "description": row.get("description", ""),
                "position": position[row["slug"]],
                **{field: bkt[field] for field in BKT_FIELDS if field in bkt},
            },
        )
    Prerequisite.objects.filter(skill__course=course).delete()
    Prerequisite.objects.bulk_create(
        Prerequisite(prerequisite=skills[before], skill=skills[after]) for before, after in edges
    )
    return skills


def _load_items(course: Course, item_rows: list[dict], skills: dict[str, Skill], progress: Progress | None):
    existing = {item.slug: item for item in course.items.prefetch_related("steps")}
    new_rows = [row for row in item_rows if row["slug"] not in existing]
    items = Item.objects.bulk_create(Item(course=course, slug=r["slug"], **_item_fields(r)) for r in new_rows)
    existing.update({item.slug: item for item in items})
    fresh = {item.slug for item in items}
    for done, row in enumerate(item_rows, 1):
        item = existing[row["slug"]]
        if item.slug not in fresh:
            _update_item(item, row)
        if progress and done % 500 == 0 and done < len(item_rows):
            progress(done, len(item_rows))
    new_steps = [
        Step(item=existing[row["slug"]], position=i, **_step_fields(step))
        for row in new_rows
        for i, step in enumerate(row["steps"])
    ]
    Step.objects.bulk_create(new_steps, batch_size=2000)
    _tag_skills(course, item_rows, existing, skills)
    if progress:
        progress(len(item_rows), len(item_rows))  # last, once the new steps and the skill tags are written too


def _update_item(item: Item, row: dict):
    """Update an existing item in place; steps are matched by position."""
    fields = _item_fields(row)
    steps = list(item.steps.all())
    changed = any(getattr(item, k) != v for k, v in fields.items()) or len(steps) != len(row["steps"])
    for step, step_row in zip(steps, row["steps"], strict=False):
        step_fields = _step_fields(step_row)
        if any(getattr(step, k) != v for k, v in step_fields.items()):
            changed = True
            Step.objects.filter(pk=step.pk).update(**step_fields)
    surplus = steps[len(row["steps"]):]
    if any(step.attempts.exists() for step in surplus):
        raise ContentError(f"item '{item.slug}': the package drops steps that learners have answered")
    Step.objects.filter(pk__in=[s.pk for s in surplus]).delete()
    Step.objects.bulk_create(
        Step(item=item, position=i, **_step_fields(s)) for i, s in enumerate(row["steps"]) if i >= len(steps)
    )
    if changed:
        Item.objects.filter(pk=item.pk).update(**fields, version=item.version + 1)


def _tag_skills(course: Course, item_rows: list[dict], items: dict[str, Item], skills: dict[str, Skill]):
    """Replace the item and step skill tags of every item in the package."""
    item_ids = [items[row["slug"]].pk for row in item_rows]
    ItemSkill.objects.filter(item_id__in=item_ids).delete()
    ItemSkill.objects.bulk_create(
        (ItemSkill(item=items[row["slug"]], skill=skills[slug]) for row in item_rows for slug in row["skills"]),
        batch_size=5000,
    )
    steps = {(s.item_id, s.position): s.pk for s in Step.objects.filter(item_id__in=item_ids)}
    StepSkill = Step.skills.through
    StepSkill.objects.filter(step_id__in=steps.values()).delete()
    StepSkill.objects.bulk_create(
        (
            StepSkill(step_id=steps[(items[row["slug"]].pk, i)], skill=skills[slug])
            for row in item_rows
            for i, step in enumerate(row["steps"])
            for slug in step.get("skills") or row["skills"]
        ),
        batch_size=5000,
    )


def export_course_package(course: Course) -> dict:
    """The course as a normalised package dict, ready for write_package."""
    skills = list(course.skills.prefetch_related("requires__prerequisite"))
    item_skills: dict[int, list[str]] = {}
    for item_id, slug in ItemSkill.objects.filter(item__course=course).values_list("item_id", "skill__slug"):
        item_skills.setdefault(item_id, []).append(slug)
    step_skills: dict[int, list[str]] = {}
    for step_id, slug in Step.skills.through.objects.filter(step__item__course=course).values_list(
        "step_id", "skill__slug"
    ):
        step_skills.setdefault(step_id, []).append(slug)
    return {
        "format": FORMAT,
        "course": {
            "slug": course.slug,
            "title": course.title,
            "description": course.description,
            "language": course.language,
        },
        "skills": [
            {
                "slug": s.slug,
                "name": s.name,
                "description": s.description,
                "requires": [edge.prerequisite.slug for edge in s.requires.all()],
                "bkt": {field: getattr(s, field) for field in BKT_FIELDS},
            }
            for s in skills
        ],
        "items": [
            _item_as_package(item, item_skills.get(item.pk, []), list(item.steps.all()), step_skills)
            for item in course.items.prefetch_related("steps").order_by("slug")
        ],
    }


def cycle_if_added(prerequisite: Skill, skill: Skill) -> list[str] | None:
    """The cycle (as skill slugs) that the edge prerequisite -> skill would close, or None."""
    edges = list(
        Prerequisite.objects.filter(skill__course=skill.course_id).values_list("prerequisite__slug", "skill__slug")
    )
    return graph.find_cycle([], edges + [(prerequisite.slug, skill.slug)])


def add_prerequisite(prerequisite: Skill, skill: Skill) -> Prerequisite:
    """Add an edge to the skill graph, refusing one that would close a cycle (the cycle is named)."""
    edge = Prerequisite(prerequisite=prerequisite, skill=skill)
    try:
        edge.full_clean(validate_constraints=False)
    except ValidationError as exc:
        raise ContentError(" ".join(exc.messages)) from exc
    return Prerequisite.objects.get_or_create(prerequisite=prerequisite, skill=skill)[0]


# --- authoring: edits, checks, import and export jobs -----------------------------------------------------

MAX_UPLOAD_BYTES = 50_000_000
JobProgress = Callable[[str, float], None]


def content_changed(course_id: int, item_ids=()) -> None:
    """Record an edit to a course's content: the edited items get a new version (attempts keep the one they
    answered), and the course's `updated_at` moves, which is the key of the practice loop's cached course
    structure (tutor.practice._course_structure), so the next item served sees the edit without a restart."""
    if item_ids:
        Item.objects.filter(pk__in=list(item_ids)).update(version=F("version") + 1)
    Course.objects.filter(pk=course_id).update(updated_at=timezone.now())


def number_steps(item: Item) -> None:
    """Number an item's steps 0, 1, 2, … in their order (the practice loop finds a step by its number), after an
    author deleted or inserted one; in two passes, since each number is unique within the item."""
    steps = list(item.steps.order_by("position", "pk"))
    if [s.position for s in steps] == list(range(len(steps))):
        return
    with transaction.atomic():
        top = max(s.position for s in steps) + 1
        for offset, step in enumerate(steps):
            Step.objects.filter(pk=step.pk).update(position=top + offset)
        for number, step in enumerate(steps):
            Step.objects.filter(pk=step.pk).update(position=number)


def skill_graph_changed(course_id: int) -> None:
    """After prerequisites were edited: put the course's skills back in prerequisite order (their `position`,
    which pages and the mastery policy read), keeping the present order where the graph leaves it free."""
    skills = list(Skill.objects.filter(course_id=course_id).order_by("position", "slug"))
    edges = Prerequisite.objects.filter(skill__course_id=course_id).values_list("prerequisite_id", "skill_id")
    order = graph.topological_order([s.pk for s in skills], edges)  # the admin refused any cycle
    position = {skill_id: i for i, skill_id in enumerate(order)}
    moved = [s for s in skills if s.position != position[s.pk]]
    for skill in moved:
        skill.position = position[skill.pk]
    Skill.objects.bulk_update(moved, ["position"])
    content_changed(course_id)


def course_problems(course: Course) -> dict[str, list[str]]:
    """Check a course as it is in the database, as an imported package would be: `errors` (cycles, steps
    whose answer cannot be graded, items without steps or skills) and `warnings` (skills no item practises,
    skills that can never be unlocked, steps without hints)."""
    package = export_course_package(course)
    try:
        normalise_package(package, file=course.slug)
    except PackageError as exc:
        errors = [str(issue) for issue in exc.errors]
    else:
        errors = []
    return {"errors": errors, "warnings": [str(issue) for issue in package_warnings(package, course.slug)]}


def start_import(requested_by, file_name: str, data: bytes) -> ContentJob:
    """Keep an uploaded package as a queued import job (the caller queues the task once this is committed)."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise ContentError(f"The file is {len(data) / 1e6:.0f} MB; packages up to 50 MB can be uploaded here.")
    if not file_name.lower().endswith((".yaml", ".yml", ".json")):
        raise ContentError("Upload a course package as a .yaml, .yml or .json file (docs/course-format.md).")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ContentError("The file is not UTF-8 text; save it as UTF-8 and upload it again.") from None
    return ContentJob.objects.create(
        kind=ContentJob.Kind.IMPORT, file_name=file_name[:200], content=text, requested_by=requested_by
    )


def start_export(requested_by, course: Course) -> ContentJob:
    return ContentJob.objects.create(
        kind=ContentJob.Kind.EXPORT, course=course, file_name=f"{course.slug}.yaml", requested_by=requested_by
    )


def _job_update(job: ContentJob, **fields) -> None:
    for name, value in fields.items():
        setattr(job, name, value)
    ContentJob.objects.filter(pk=job.pk).update(**fields)


def run_import(job: ContentJob, progress: JobProgress | None = None) -> ContentJob:
    """Check the uploaded package and load it (all or nothing). A package with problems is refused with every
    problem listed, a prerequisite cycle named; warnings (e.g. steps without hints) are kept in the report."""
    progress = progress or (lambda stage, fraction: None)
    _job_update(job, status=ContentJob.Status.RUNNING, stage="checking the package", progress=0.05)
    progress("checking the package", 0.05)
    try:
        package = read_package_text(job.content, job.file_name)
    except PackageError as exc:
        return fail_job(job, "The package was not imported: fix these problems and upload it again.",
                           [str(issue) for issue in exc.errors])
    warnings = [str(issue) for issue in package_warnings(package, job.file_name)]
    progress("saving items", 0.3)

    def saved(done: int, total: int) -> None:
        progress(f"saved {done} of {total} items", 0.3 + 0.65 * done / max(total, 1))

    try:
        course = load_course_package(package, progress=saved)
    except (ContentError, graph.CycleError) as exc:
        return fail_job(job, "The package was not imported.", [str(exc)])
    summary = (f"Imported '{course.slug}': {len(package['skills'])} skills, {len(package['items'])} items, "
               f"{sum(len(i['steps']) for i in package['items'])} steps.")
    _job_update(job, status=ContentJob.Status.DONE, stage="done", progress=1.0, course=course,
                finished_at=timezone.now(), report={"summary": summary, "errors": [], "warnings": warnings})
    return job


def run_export(job: ContentJob, progress: JobProgress | None = None) -> ContentJob:
    """Write the job's course as one YAML package, kept on the job for download."""
    progress = progress or (lambda stage, fraction: None)
    _job_update(job, status=ContentJob.Status.RUNNING, stage="reading the course", progress=0.1)
    progress("reading the course", 0.1)
    if job.course_id is None:
        return fail_job(job, "The course was deleted before the export ran.", [])
    package = export_course_package(job.course)
    progress("writing the package", 0.6)
    text = dump_package(package)
    summary = f"Exported '{job.course.slug}': {len(package['skills'])} skills, {len(package['items'])} items."
    _job_update(job, status=ContentJob.Status.DONE, stage="done", progress=1.0, content=text,
                finished_at=timezone.now(), report={"summary": summary, "errors": [], "warnings": []})
    return job


def fail_job(job: ContentJob, summary: str, errors: list[str]) -> ContentJob:
    """End a job as failed, with what the page should say."""
    _job_update(job, status=ContentJob.Status.FAILED, stage="failed", finished_at=timezone.now(),
                report={"summary": summary, "errors": errors, "warnings": []})
    return job
