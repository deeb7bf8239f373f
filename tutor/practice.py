"""The practice loop as plain functions: start a session, serve an item, grade an attempt, give a hint.

Every state change happens inside one transaction with the session row locked, so a double click or a
retried request never records an answer twice: each attempt and hint carries the client's idempotency
key, and a repeated key returns the original result. Nothing here waits for a worker or a model.
Mastery follows the Cognitive Tutor convention: only the first action on a step is evidence (a hint
requested before answering counts as an error), later tries on the same step are logged but not counted.

The next item comes from the class's scheduling policy (`tutor.scheduling`), fed from the database: mastery
and FSRS memory per skill (`MasteryState`), the items answered lately, the class's goals that are not past
their due date, and the session's short-term queue of skills slipped on. Every item served is logged as a
`Selection` with the candidates and their probabilities, in the transaction that serves it.

Hints come two ways. The Hint button's JSON API climbs the step's authored ladder (`request_hint`). On the
practice page's websocket the Socratic tutor answers instead (`start_tutor_turn`, then the reply streamed by
`tutor.hints.dialogue` outside any transaction, then `finish_tutor_turn`): Help is the next level of the
ladder (the same `hint_level`, so help before answering counts as an error exactly like an authored hint), and a
message typed to the tutor is a dialogue turn at the level reached, which neither climbs the ladder nor counts
for mastery again. The class's `hint_policy` decides whether the model speaks and whether the last level may
give the answer away; the model is rate-limited per learner, and the authored ladder answers whenever the model
is not asked, is slow, is down or says nothing the guard lets through.
"""

import functools
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from knowledge.models import Course, Item, MasteryState, Skill, Step
from knowledge.tracing.bkt import BKTParams, mastery_after
from tutor import access, grading, scheduling
from tutor.consumers import publish_class_activity, publish_mastery_change
from tutor.hints import dialogue
from tutor.hints.backends import Backend, BackendError, default_backend
from tutor.hints.prompts import MAX_LEARNER_MESSAGE, HintRequest
from tutor.models import (
    DEFAULT_HINT_POLICY,
    HINT_POLICY_CHOICES,
    Attempt,
    ClassGoal,
    HintTurn,
    PracticeSession,
    Selection,
    User,
)
from tutor.scheduling.memory import Memory

logger = logging.getLogger(__name__)

RECENT_ITEMS = 50  # items answered lately that the policy sees (it avoids repeating the last RECENT_WINDOW)

HINT_POLICIES = tuple(name for name, _ in HINT_POLICY_CHOICES)
MAX_REPLIES_PER_STEP = 6  # messages to the tutor on one step: after that, an answer or the next hint
MODEL_TURNS_PER_WINDOW = 20  # tutor-model turns one learner may have ...
MODEL_WINDOW = timedelta(minutes=10)  # ... within this window; beyond it the lesson's ladder answers
IN_FLIGHT = timedelta(seconds=30)  # a tutor turn unfinished for longer was interrupted and blocks nothing
WEAK_PREREQUISITES = 3  # unmastered prerequisites of the step's skills the tutor hears about
AUTHORED_ONLY = "the class uses the lesson's hints only"
RATE_LIMITED = f"rate limit: {MODEL_TURNS_PER_WINDOW} tutor-model turns within {MODEL_WINDOW.seconds // 60} minutes"


class PracticeError(Exception):
    """A request the loop refuses; `status` is the HTTP status that fits, the message says what to do."""

    status = 400


class NotFound(PracticeError):
    status = 404


class Conflict(PracticeError):
    status = 409


@dataclass
class AttemptResult:
    attempt_id: int
    correct: bool
    feedback: str
    mastery_change: dict[str, list[float]]
    step_complete: bool
    item_complete: bool
    replayed: bool = False


@dataclass(frozen=True)
class TutorLadder:
    """The levels the tutor's Help climbs on a step under a class's hint policy."""

    hints: tuple[dict, ...]  # the authored rungs that do not give the answer away, in order
    bottom_out: dict | None  # the worked answer, when the policy and the step both have one: the last level
    total: int  # levels: one per rung (or per generic scaffolding move, for a step without rungs), + the bottom-out

    def kind(self, level: int) -> str:
        if self.bottom_out is not None and level >= self.total:
            return "bottom_out"
        return self.hints[level - 1]["kind"] if level <= len(self.hints) else "hint"

    def bottom_out_allowed(self, level: int) -> bool:
        return self.bottom_out is not None and level >= self.total


@dataclass
class TutorTurn:
    """A tutor turn begun by `start_tutor_turn`: the stored row, and what to ask the model (None on a replay)."""

    turn: HintTurn
    request: HintRequest | None
    backend: Backend | None  # None: the authored ladder answers (the policy, the rate limit, or no model)
    total: int  # levels on this step
    mastery_change: dict[str, list[float]] = field(default_factory=dict)
    replayed: bool = False


@dataclass
class HintResult:
    level: int
    total: int
    kind: str
    text: str
    has_answer: bool
    mastery_change: dict[str, list[float]] = field(default_factory=dict)
    replayed: bool = False


# --- reading ------------------------------------------------------------------------------------


def course_mastery(learner: User, course: Course) -> list[dict]:
    """Every skill of the course in prerequisite order with the learner's P(known) (the prior if unseen)."""
    states = {m.skill_id: m for m in MasteryState.objects.filter(learner=learner, skill__course=course)}
    rows = []
    for skill in course.skills.all():
        state = states.get(skill.pk)
        p_known = state.p_known if state else skill.p_init
        rows.append(
            {
                "skill_id": skill.pk,
                "slug": skill.slug,
                "name": skill.name,
                "p_known": p_known,
                "mastered": p_known >= scheduling.MASTERY_THRESHOLD,
                "observations": state.observations if state else 0,
                "correct": state.correct if state else 0,
            }
        )
    return rows


def current_step(session: PracticeSession) -> Step | None:
    if session.current_item_id is None:
        return None
    return (
        Step.objects.select_related("item")
        .filter(item_id=session.current_item_id, position=session.current_step)
        .first()
    )


def step_skills(step: Step) -> list[Skill]:
    """The skills a step exercises: its own tags, or else its item's."""
    return list(step.skills.all()) or list(step.item.skills.all())


def problem_state(session: PracticeSession) -> dict:
    """What the learner sees now: the item, the steps done, the current step and the hints shown.
    Never includes an answer spec beyond the choices of a multiple-choice step."""
    item = session.current_item
    if item is None:
        return {"session_id": session.pk, "item": None, "reason": session.selection_reason}
    steps = list(item.steps.all())
    step = steps[session.current_step]
    policy = hint_policy(session)
    turns = _visit_turns(session, step).filter(finished_at__isnull=False).order_by("created_at", "pk")
    return {
        "session_id": session.pk,
        "reason": session.selection_reason,
        "items_completed": session.items_completed,
        "item": {"id": item.pk, "title": item.title, "body": item.body, "version": item.version},
        "steps_done": [
            {"position": s.position, "prompt": s.prompt, "answer": grading.canonical_answer(s.answer)}
            for s in steps[: session.current_step]
        ],
        "step": {
            "id": step.pk,
            "position": step.position,
            "count": len(steps),
            "prompt": step.prompt,
            "answer_type": step.answer_type,
            "choices": step.answer.get("choices") if step.answer_type == "choice" else None,
        },
        "hints": [_shown_turn(step, turn) for turn in turns],
        "hints_total": len(hint_rungs(step, policy)),
        "hint_level": session.hint_level,
        "hint_policy": policy,
        "tutor_total": tutor_ladder(step, policy).total,
    }


def _shown_turn(step: Step, turn: HintTurn) -> dict:
    """A hint as the page shows it. `has_answer`: the lesson's scaffold question was shown, and can be checked."""
    rung = step.hints[turn.level - 1] if turn.level <= len(step.hints) else {}
    return {
        "level": turn.level,
        "kind": turn.kind,
        "text": turn.text,
        "has_answer": turn.source == HintTurn.Source.AUTHORED and "answer" in rung and rung["text"] in turn.text,
        "source": turn.source,
        "action": turn.action,
        "learner_message": turn.learner_message,
        "note": tutor_note(turn),
    }


# --- the loop -----------------------------------------------------------------------------------


def start_session(learner: User, course_id: int, now: datetime | None = None) -> PracticeSession:
    """Resume the learner's open session on the course, or start one with a first item chosen."""
    now = now or timezone.now()
    course = access.courses_for(learner).filter(pk=course_id).first()
    if course is None or learner.role != User.Role.LEARNER:
        raise NotFound("No such course among your classes.")
    with transaction.atomic():
        session = (
            PracticeSession.objects.select_for_update()
            .filter(learner=learner, course=course, ended_at__isnull=True)
            .order_by("-started_at")
            .first()
        )
        if session is None:
            classroom = access.classrooms_for(learner).filter(course=course).first()
            session = PracticeSession.objects.create(
                learner=learner, course=course, classroom=classroom, started_at=now
            )
        if session.current_item_id is None:
            _serve_next_item(session, now)
            session.save()
        transaction.on_commit(lambda: publish_class_activity(session.classroom_id, learner.pk, "session"))
    return session


def end_session(learner: User, session_id: int, now: datetime | None = None) -> PracticeSession:
    session = _own_session(learner, session_id)
    if session.ended_at is None:
        session.ended_at = now or timezone.now()
        session.save(update_fields=["ended_at"])
        transaction.on_commit(lambda: publish_class_activity(session.classroom_id, learner.pk, "session-end"))
    return session


def submit_attempt(
    learner: User, session_id: int, step_id: int, answer: str, client_key: str, now: datetime | None = None
) -> AttemptResult:
    """Grade an answer to the current step, update mastery on a first action, move on when correct."""
    now = now or timezone.now()
    try:
        with transaction.atomic():
            session = _locked_session(learner, session_id)
            earlier = Attempt.objects.filter(learner=learner, client_key=client_key).first()
            if earlier is not None:
                return _replay_attempt(earlier, step_id, answer)
            _ensure_open(session)
            step = _expect_step(session, step_id)
            try:
                grade = grading.grade(step.answer, answer)
            except grading.AnswerFormatError as exc:
                raise PracticeError(str(exc)) from exc
            first_action = _is_first_action(session, step)
            change = _observe(learner, step, grade.correct, now) if first_action else {}
            attempt = Attempt.objects.create(
                learner=learner,
                session=session,
                item_id=step.item_id,
                item_version=step.item.version,
                step=step,
                raw_answer=answer,
                normalized_answer=grade.normalized[:400],
                correct=grade.correct,
                feedback=grade.feedback[:300],
                hint_level=session.hint_level,
                first_action=first_action,
                mastery_change=change,
                client_key=client_key,
                started_at=session.item_started_at,
                created_at=now,
            )
            item_complete = False
            if grade.correct:
                item_complete = _advance(session, step, now)
            session.save()
            _publish_on_commit(session, learner.pk, change, "attempt")
    except IntegrityError:
        # A concurrent request with the same key won the race: answer with its result.
        earlier = Attempt.objects.filter(learner=learner, client_key=client_key).first()
        if earlier is None:
            raise
        return _replay_attempt(earlier, step_id, answer)
    return AttemptResult(
        attempt_id=attempt.pk,
        correct=grade.correct,
        feedback=grade.feedback,
        mastery_change=change,
        step_complete=grade.correct,
        item_complete=item_complete,
    )


def request_hint(
    learner: User, session_id: int, step_id: int, client_key: str, now: datetime | None = None
) -> HintResult:
    """Show the next rung of the current step's authored hint ladder."""
    now = now or timezone.now()
    with transaction.atomic():
        session = _locked_session(learner, session_id)
        earlier = HintTurn.objects.filter(learner=learner, client_key=client_key).first()
        if earlier is not None:
            if earlier.step_id != step_id:
                raise Conflict("This idempotency key was already used for another hint request.")
            return _hint_result(earlier, replayed=True)
        _ensure_open(session)
        step = _expect_step(session, step_id)
        rungs = hint_rungs(step, hint_policy(session))
        if session.hint_level >= len(rungs):
            raise Conflict("There are no more hints for this step.")
        first_action = _is_first_action(session, step)
        change = _observe(learner, step, False, now) if first_action else {}
        session.hint_level += 1
        rung = rungs[session.hint_level - 1]
        turn = HintTurn.objects.create(
            learner=learner,
            session=session,
            step=step,
            level=session.hint_level,
            kind=rung["kind"],
            text=rung["text"],
            first_action=first_action,
            mastery_change=change,
            client_key=client_key,
            created_at=now,
            finished_at=now,
        )
        session.save(update_fields=["hint_level"])
        _publish_on_commit(session, learner.pk, change, "hint")
    return _hint_result(turn)


def check_scaffold(learner: User, session_id: int, step_id: int, level: int, answer: str) -> grading.Grade:
    """Grade an answer to a scaffold sub-question the learner has been shown. It is practice within the
    hint, so it changes no mastery."""
    session = _own_session(learner, session_id)
    step = _expect_step(session, step_id)
    if not 1 <= level <= session.hint_level or "answer" not in step.hints[level - 1]:
        raise NotFound("No such scaffold question has been shown on this step.")
    try:
        return grading.grade(step.hints[level - 1]["answer"], answer)
    except grading.AnswerFormatError as exc:
        raise PracticeError(str(exc)) from exc


# --- the Socratic tutor -------------------------------------------------------------------------


@functools.cache
def hint_backend() -> Backend | None:
    """The process's tutor model, made once (`TUTOR_LLM_URL`'s server, else the local model); None when neither
    is installed, and then the lesson's ladder answers every hint."""
    try:
        return default_backend()
    except BackendError as exc:
        logger.warning("The tutor model is off: %s", exc)
        return None


def hint_policy(session: PracticeSession) -> str:
    policy = session.classroom.hint_policy if session.classroom_id else DEFAULT_HINT_POLICY
    return policy if policy in HINT_POLICIES else DEFAULT_HINT_POLICY


def hint_rungs(step: Step, policy: str) -> list[dict]:
    """The authored rungs the Hint button climbs: all of them, but the worked answer (the `bottom_out` rung)
    only in a class whose policy allows it (`authored` shows the ladder as written)."""
    if policy == "model":
        return [rung for rung in step.hints if rung["kind"] != "bottom_out"]
    return list(step.hints)


def tutor_ladder(step: Step, policy: str) -> TutorLadder:
    """`authored` climbs the lesson's ladder as written (its worked answer last, as the Hint button does);
    `model` stops before the worked answer; `model-bottom-out` ends with it. The bottom-out is the ladder's
    `bottom_out` rung (docs/course-format.md: at most one, always last; a scaffold's `answer` belongs to its
    own sub-question, not to the step). A step without other rungs gets the generic scaffolding moves."""
    hints = tuple(rung for rung in step.hints if rung["kind"] != "bottom_out")
    bottom_out = next((rung for rung in step.hints if rung["kind"] == "bottom_out"), None)
    if policy == "model":
        bottom_out = None
    total = (len(hints) or len(dialogue.SCAFFOLD_MOVES)) + (bottom_out is not None)
    return TutorLadder(hints, bottom_out, total)


def start_tutor_turn(
    learner: User,
    session_id: int,
    step_id: int,
    action: str,
    message: str,
    client_key: str,
    now: datetime | None = None,
) -> TutorTurn:
    """Begin one tutor turn on the learner's current step, in one transaction with the session locked: check the
    request, store the turn (unfinished), climb the ladder on Help (a first action counts as an error for mastery,
    as an authored hint does), and gather what the tutor may know. The model is asked afterwards, outside the
    transaction; `finish_tutor_turn` stores its reply. A repeated `client_key` returns the stored turn."""
    now = now or timezone.now()
    message = (message or "").strip()
    if action not in (HintTurn.Action.HELP, HintTurn.Action.REPLY):
        raise PracticeError('Say "help" for the next hint or "reply" to answer the tutor.')
    if not isinstance(client_key, str) or not 1 <= len(client_key) <= 64:
        raise PracticeError("Send a client_key of 1 to 64 characters with each request.")
    if len(message) > MAX_LEARNER_MESSAGE:
        raise PracticeError(f"Keep your message to the tutor to {MAX_LEARNER_MESSAGE} characters.")
    if action == HintTurn.Action.REPLY and not message:
        raise PracticeError("Write a message to the tutor first.")
    try:
        with transaction.atomic():
            session = _locked_session(learner, session_id)
            earlier = HintTurn.objects.filter(learner=learner, client_key=client_key).first()
            if earlier is not None:
                return _replay_tutor_turn(earlier, step_id, message)
            _ensure_open(session)
            step = _expect_step(session, step_id)
            policy = hint_policy(session)
            ladder = tutor_ladder(step, policy)
            visit = _visit_turns(session, step)
            if visit.filter(finished_at__isnull=True, created_at__gt=now - IN_FLIGHT).exists():
                raise Conflict("The tutor is still answering; wait for its reply.")
            if action == HintTurn.Action.REPLY and policy == "authored":
                raise Conflict("Your class uses the lesson's hints only: press Help for the next one.")
            first_action, change = False, {}
            if action == HintTurn.Action.REPLY and session.hint_level > 0:
                if visit.filter(action=HintTurn.Action.REPLY).count() >= MAX_REPLIES_PER_STEP:
                    raise Conflict(
                        f"That makes {MAX_REPLIES_PER_STEP + 1} messages to the tutor on this step, the most it takes:"
                        " try an answer, or press Help for the next hint."
                    )
            else:  # Help, or a message before any help (which asks for help just the same): the next level
                if session.hint_level >= ladder.total:
                    raise Conflict("There are no more hints for this step.")
                action = HintTurn.Action.HELP
                first_action = _is_first_action(session, step)
                change = _observe(learner, step, False, now) if first_action else {}
                session.hint_level += 1
                session.save(update_fields=["hint_level"])
            level = max(session.hint_level, 1)
            backend, reason = None, AUTHORED_ONLY
            if policy != "authored":
                backend, reason = hint_backend(), ""
                if backend is not None and _model_turns_since(learner, now - MODEL_WINDOW) >= MODEL_TURNS_PER_WINDOW:
                    backend, reason = None, RATE_LIMITED
            turn = HintTurn.objects.create(
                learner=learner,
                session=session,
                step=step,
                level=level,
                kind=ladder.kind(level),
                text="",
                first_action=first_action,
                mastery_change=change,
                client_key=client_key,
                created_at=now,
                action=action,
                learner_message=message,
                model=backend.name[:100] if backend else "",
                fallback_reason=reason,
            )
            request = tutor_request(session, step, ladder, level, message, visit)
            _publish_on_commit(session, learner.pk, change, "hint")
    except IntegrityError:
        # A concurrent request with the same key won the race: answer with its turn.
        earlier = HintTurn.objects.filter(learner=learner, client_key=client_key).first()
        if earlier is None:
            raise
        return _replay_tutor_turn(earlier, step_id, message)
    return TutorTurn(turn, request, backend, ladder.total, change)


def finish_tutor_turn(turn: HintTurn, reply: dialogue.Reply, now: datetime | None = None) -> HintTurn:
    """Store what the learner was shown and how it was made. Once: a finished turn keeps its first reply."""
    now = now or timezone.now()
    reason = "" if reply.source == HintTurn.Source.MODEL else (turn.fallback_reason or reply.fallback_reason)
    HintTurn.objects.filter(pk=turn.pk, finished_at__isnull=True).update(
        text=reply.text,
        source=reply.source,
        model=(reply.model or turn.model)[:100],
        first_sentence_s=None if reply.first_sentence_s is None else round(reply.first_sentence_s, 3),
        seconds=round(reply.seconds, 3),
        candidates=[
            {"text": str(c.get("text", "")).strip()[:1000], "reasons": [str(r)[:300] for r in c.get("reasons", [])]}
            for c in reply.candidates
        ],
        fallback_reason=reason[:300],
        finished_at=now,
    )
    turn.refresh_from_db()
    return turn


def tutor_note(turn: HintTurn) -> str:
    """What the page says under a tutor turn that the model did not write: why, and where the hint came from."""
    if turn.action == HintTurn.Action.HINT or turn.source == HintTurn.Source.MODEL or not turn.finished_at:
        return ""
    reason = turn.fallback_reason
    origin = "this hint is from the lesson." if turn.source == HintTurn.Source.AUTHORED else "here is a general tip."
    if reason == AUTHORED_ONLY:
        return ""
    if reason.startswith("rate limit"):
        return f"You have asked the tutor a lot in the last few minutes; {origin}"
    if "not a question" in reason:
        return "The tutor's reply is finished with a hint from the lesson."
    if "passed the guard" in reason:
        return f"The tutor could not say it without giving the answer away; {origin}"
    if any(word in reason for word in ("slow", "timed out", "busy")):
        return f"The tutor model is busy; {origin}"
    return f"The tutor model is not available right now; {origin}"


def tutor_request(
    session: PracticeSession, step: Step, ladder: TutorLadder, level: int, message: str, visit=None
) -> HintRequest:
    """What the tutor may know for one reply, read from the database. Nothing in it identifies the learner:
    the problem, the step, its answer and authored hints as hidden notes, the learner's answers on this step with
    grading's feedback, mastery by skill name, the dialogue so far on this step, and the level."""
    visit = _visit_turns(session, step) if visit is None else visit
    since = {"created_at__gte": session.item_started_at} if session.item_started_at else {}
    answers = list(
        Attempt.objects.filter(session=session, step=step, **since)
        .order_by("created_at", "pk")
        .values_list("raw_answer", "correct", "feedback")
    )
    last_step = Step.objects.filter(item_id=step.item_id).order_by("-position").first()
    dialogue_so_far = []
    for said, shown in (
        visit.filter(finished_at__isnull=False).order_by("created_at", "pk").values_list("learner_message", "text")
    ):
        if said:
            dialogue_so_far.append(("learner", said))
        dialogue_so_far.append(("tutor", shown))
    return HintRequest(
        problem=step.item.body,
        step_prompt=step.prompt,
        step_answer=step.answer,
        solution=_answer_text(step.answer),
        authored_hints=tuple(rung["text"] for rung in ladder.hints),
        bottom_out=ladder.bottom_out["text"] if ladder.bottom_out else "",
        final_answer=last_step.answer if last_step is not None and last_step.pk != step.pk else None,
        learner_answers=tuple(raw for raw, _, _ in answers),
        learner_correct=answers[-1][1] if answers else None,
        feedback=answers[-1][2] if answers else "",
        mastery=_tutor_mastery(session.learner_id, step),
        dialogue=tuple(dialogue_so_far),
        learner_message=message,
        level=level,
        bottom_out_allowed=ladder.bottom_out_allowed(level),
        language=step.item.course.language or "en",
    )


def _answer_text(spec: dict) -> str:
    """The answer as the tutor's hidden note says it: a choice by its letter and text."""
    if spec["type"] != "choice":
        return grading.canonical_answer(spec)
    correct = spec["correct"] if isinstance(spec["correct"], list) else [spec["correct"]]
    return "; ".join(f"{chr(65 + i)}) {spec['choices'][i]}" for i in sorted(set(correct)))


def _tutor_mastery(learner_id: int, step: Step) -> tuple[tuple[str, float], ...]:
    """(skill name, P(known)) for the step's skills, then for up to WEAK_PREREQUISITES of their direct
    prerequisites the learner has not mastered, weakest first. Names only: no ids reach the model."""
    skills = step_skills(step)
    course, priors = _course_map(step.item.course_id)
    own = {s.pk for s in skills}
    prerequisites = {p for s in own if s in course.skills for p in course.skills[s].requires} - own
    known = dict(
        MasteryState.objects.filter(learner_id=learner_id, skill_id__in=own | prerequisites).values_list(
            "skill_id", "p_known"
        )
    )
    rows = [(s.name, known.get(s.pk, s.p_init)) for s in skills]
    weak = sorted(
        (known.get(p, priors.get(p, 0.0)), course.skills[p].name)
        for p in prerequisites
        if known.get(p, priors.get(p, 0.0)) < scheduling.MASTERY_THRESHOLD
    )
    rows += [(name, p) for p, name in weak[:WEAK_PREREQUISITES]]
    return tuple((name, round(p, 2)) for name, p in rows)


def _visit_turns(session: PracticeSession, step: Step):
    """The hint turns on this step since the item was put in front of the learner."""
    since = {"created_at__gte": session.item_started_at} if session.item_started_at else {}
    return HintTurn.objects.filter(session=session, step=step, **since)


def _model_turns_since(learner: User, since: datetime) -> int:
    """Turns for which the tutor model was asked (finished or not) since then: the rate limit counts these."""
    return HintTurn.objects.filter(learner=learner, created_at__gte=since).exclude(model="").count()


def _replay_tutor_turn(turn: HintTurn, step_id: int, message: str) -> TutorTurn:
    if turn.action == HintTurn.Action.HINT or turn.step_id != step_id or turn.learner_message != message:
        raise Conflict("This idempotency key was already used for another hint request.")
    if turn.finished_at is None:
        raise Conflict("The tutor is still answering this request; wait for its reply.")
    total = tutor_ladder(turn.step, hint_policy(turn.session)).total
    return TutorTurn(turn, None, None, total, turn.mastery_change, replayed=True)


# --- helpers ------------------------------------------------------------------------------------


def _publish_on_commit(session: PracticeSession, learner_id: int, change: dict, event: str):
    """Once the transaction commits: the learner's mastery change to their own page, the event to their class's
    live view (a rolled-back answer tells no one)."""

    def publish():
        publish_mastery_change(learner_id, change)
        publish_class_activity(session.classroom_id, learner_id, event)

    transaction.on_commit(publish)


def _own_session(learner: User, session_id: int) -> PracticeSession:
    session = PracticeSession.objects.filter(pk=session_id, learner=learner).first()
    if session is None:
        raise NotFound("No such practice session of yours.")
    return session


def _locked_session(learner: User, session_id: int) -> PracticeSession:
    session = PracticeSession.objects.select_for_update().filter(pk=session_id, learner=learner).first()
    if session is None:
        raise NotFound("No such practice session of yours.")
    return session


def _ensure_open(session: PracticeSession):
    if session.ended_at is not None:
        raise Conflict("This practice session has ended; start a new one.")


def _expect_step(session: PracticeSession, step_id: int) -> Step:
    step = current_step(session)
    if step is None or step.pk != step_id:
        raise Conflict("That is not the step you are on; reload the problem to continue.")
    return step


def _is_first_action(session: PracticeSession, step: Step) -> bool:
    return (
        session.hint_level == 0
        and not Attempt.objects.filter(session=session, step=step, created_at__gte=session.item_started_at).exists()
    )


def _observe(learner: User, step: Step, correct: bool, now: datetime) -> dict[str, list[float]]:
    """The online update after a first action on a step: BKT mastery of each skill the step exercises
    ({skill slug: [before, after]} is returned) and their FSRS memory, with partial credit to the memory of
    their direct prerequisites (`scheduling.after_answer`)."""
    skills = step_skills(step)
    course, _ = _course_map(step.item.course_id)
    skill_ids = [s.pk for s in skills if s.pk in course.skills]
    prerequisites = {p for s in skill_ids for p in course.skills[s].requires}
    states = {
        m.skill_id: m
        for m in MasteryState.objects.select_for_update().filter(
            learner=learner, skill_id__in={s.pk for s in skills} | prerequisites
        )
    }
    change = {}
    mastered = set()
    for skill in skills:
        state = states.setdefault(skill.pk, MasteryState(learner=learner, skill=skill, p_known=skill.p_init))
        before = state.p_known
        if before >= scheduling.MASTERY_THRESHOLD:
            mastered.add(skill.pk)
        state.p_known = mastery_after(before, correct, _params(skill))
        state.observations += 1
        state.correct += int(correct)
        state.updated_at = now
        if state.mastered_at is None and state.p_known >= scheduling.MASTERY_THRESHOLD:
            state.mastered_at = now
        change[skill.slug] = [round(before, 6), round(state.p_known, 6)]
    memories = {skill_id: Memory.from_json(m.memory) for skill_id, m in states.items() if m.memory}
    reviewed = scheduling.after_answer(memories, course, skill_ids, correct, now, mastered)
    for skill_id, memory in reviewed.items():
        states[skill_id].memory = memory.to_json()
    for skill in skills:
        states[skill.pk].save()
    for skill_id in reviewed.keys() - {s.pk for s in skills}:  # prerequisites: only their memory moved
        states[skill_id].save(update_fields=["memory"])
    return change


def _params(skill: Skill) -> BKTParams:
    return BKTParams(skill.p_init, skill.p_learn, skill.p_guess, skill.p_slip, skill.p_forget)


def _advance(session: PracticeSession, step: Step, now: datetime) -> bool:
    """Move past a correctly answered step; returns True when that finished the item."""
    session.hint_level = 0
    if Step.objects.filter(item_id=step.item_id, position__gt=step.position).exists():
        session.current_step = step.position + 1
        return False
    session.items_completed += 1
    _requeue(session, step.item_id)
    _serve_next_item(session, now)
    return True


def _requeue(session: PracticeSession, item_id: int):
    """Once per item, when it is finished: its skills come back soon if any first action on it was wrong
    (or a hint), and leave the short-term queue if all were right."""
    course, _ = _course_map(session.course_id)
    item = course.items.get(item_id)
    if item is None:
        return
    since = {"created_at__gte": session.item_started_at} if session.item_started_at else {}
    slipped = (
        Attempt.objects.filter(session=session, item_id=item_id, first_action=True, correct=False, **since).exists()
        or HintTurn.objects.filter(session=session, step__item_id=item_id, first_action=True, **since).exists()
    )
    queue = scheduling.requeue(_short_term(session), item.skills, correct=not slipped)
    session.short_term = {str(skill_id): wait for skill_id, wait in queue.items()}


def _short_term(session: PracticeSession) -> dict[int, int]:
    return {int(skill_id): wait for skill_id, wait in (session.short_term or {}).items()}


def _serve_next_item(session: PracticeSession, now: datetime):
    """Ask the class's policy for the next item, put it in front of the learner and log the choice."""
    course, priors = _course_map(session.course_id)
    classroom = session.classroom
    policy = classroom.policy if classroom and classroom.policy in scheduling.POLICIES else scheduling.DEFAULT_POLICY
    seed = selection_seed(session)
    choice = scheduling.choose(policy, course, learner_state(session, course, priors, now), seed)
    session.current_item_id = choice.item_id if choice else None
    session.selection_reason = (choice.reason if choice else "This course has no items yet.")[:300]
    session.current_step = 0
    session.hint_level = 0
    session.item_started_at = now
    if choice is not None:
        Selection.objects.create(
            session=session,
            learner_id=session.learner_id,
            classroom=classroom,
            item_id=choice.item_id,
            skill_id=choice.skill_id,
            policy=policy,
            kind=choice.kind,
            reason=session.selection_reason,
            candidates=list(choice.candidates),
            probabilities=[round(p, 6) for p in choice.probabilities],
            seed=seed,
            created_at=now,
        )


def selection_seed(session: PracticeSession) -> int:
    """The policy's seed for the next item of a session: the same session at the same point chooses the
    same item, and each item of a session gets its own draw."""
    return session.pk * 1_000_000 + session.items_completed


def learner_state(
    session: PracticeSession, course: scheduling.CourseMap, priors: dict[int, float], now: datetime
) -> scheduling.LearnerState:
    """The learner as the policy sees them: P(known) of every skill (the prior where unseen), memory of
    every practised skill, items answered lately (most recent first), the goals of the
    session's class that are not past their due date, and the session's short-term queue."""
    mastery = dict(priors)
    memory = {}
    rows = MasteryState.objects.filter(learner_id=session.learner_id, skill__course_id=session.course_id)
    for skill_id, p_known, stored in rows.values_list("skill_id", "p_known", "memory"):
        mastery[skill_id] = p_known
        if stored:
            memory[skill_id] = Memory.from_json(stored)
    history = Attempt.objects.filter(learner_id=session.learner_id, item__course_id=session.course_id).order_by(
        "-created_at", "-pk"
    )
    recent = list(dict.fromkeys(history.values_list("item_id", flat=True)[: 4 * RECENT_ITEMS]))[:RECENT_ITEMS]
    goals = frozenset()
    if session.classroom_id is not None:
        goals = frozenset(
            ClassGoal.objects.filter(classroom_id=session.classroom_id, due__gte=now.date()).values_list(
                "skill_id", flat=True
            )
        )
    return scheduling.LearnerState(
        mastery=mastery, now=now, memory=memory, recent_items=recent, goals=goals, short_term=_short_term(session)
    )


def _course_map(course_id: int) -> tuple[scheduling.CourseMap, dict[int, float]]:
    version = Course.objects.filter(pk=course_id).values_list("updated_at", flat=True).first()
    return _course_structure(course_id, version)


@functools.lru_cache(maxsize=16)
def _course_structure(course_id: int, version: datetime) -> tuple[scheduling.CourseMap, dict[int, float]]:
    """The course as the policy sees it, and each skill's prior P(known). Content and parameters change
    rarely, so this is cached per course and `updated_at` (every package load and every refit touches it)."""
    rows = list(Skill.objects.filter(course_id=course_id).prefetch_related("requires"))
    skills = [
        scheduling.SkillInfo(
            id=s.pk,
            name=s.name,
            position=s.position,
            requires=frozenset(edge.prerequisite_id for edge in s.requires.all()),
            p_learn=s.p_learn,
        )
        for s in rows
    ]
    item_skills: dict[int, set[int]] = {}
    for item_id, skill_id in Item.skills.through.objects.filter(item__course_id=course_id).values_list(
        "item_id", "skill_id"
    ):
        item_skills.setdefault(item_id, set()).add(skill_id)
    items = [
        scheduling.ItemInfo(id=item_id, skills=frozenset(item_skills[item_id]), difficulty=difficulty)
        for item_id, difficulty in Item.objects.filter(course_id=course_id).values_list("pk", "difficulty")
        if item_id in item_skills
    ]
    return scheduling.CourseMap(skills, items), {s.pk: s.p_init for s in rows}


def _replay_attempt(attempt: Attempt, step_id: int, answer: str) -> AttemptResult:
    if attempt.step_id != step_id or attempt.raw_answer != answer:
        raise Conflict("This idempotency key was already used for a different answer.")
    last_step = not Step.objects.filter(item_id=attempt.item_id, position__gt=attempt.step.position).exists()
    return AttemptResult(
        attempt_id=attempt.pk,
        correct=attempt.correct,
        feedback=attempt.feedback,
        mastery_change=attempt.mastery_change,
        step_complete=attempt.correct,
        item_complete=attempt.correct and last_step,
        replayed=True,
    )


def _hint_result(turn: HintTurn, replayed: bool = False) -> HintResult:
    return HintResult(
        level=turn.level,
        total=len(hint_rungs(turn.step, hint_policy(turn.session))),
        kind=turn.kind,
        text=turn.text,
        has_answer="answer" in turn.step.hints[turn.level - 1],
        mastery_change=turn.mastery_change,
        replayed=replayed,
    )
