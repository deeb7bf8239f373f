"""xAPI statements (1.0.3), one JSON object a line: `initialized` and `terminated` for a practice session,
`answered` for an attempt, `asked` for a hint request or a message to the tutor, `completed` when a problem's last
step is answered correctly, `mastered` when a first action lifts a skill's mastery over the threshold.

The actor is always an `account` (the study's pseudonym on the site's home page), never an email (`mbox`). The
statement id is a UUID derived from the study and the event, so re-exporting gives the same ids and an LRS
receiving both keeps one copy.
"""

import json
import uuid

from django.conf import settings

from tutor.exports.source import LogSource, with_steps
from tutor.scheduling import MASTERY_THRESHOLD

VERBS = {
    name: {"id": f"http://adlnet.gov/expapi/verbs/{name}", "display": {"en-US": name}}
    for name in ("answered", "asked", "mastered", "initialized", "terminated", "completed")
}
INTERACTION = "http://adlnet.gov/expapi/activities/cmi.interaction"


def site_url() -> str:
    return getattr(settings, "TUTOR_SITE_URL", "") or "https://tutor.invalid"


def iso_duration(seconds: float) -> str:
    return f"PT{max(seconds, 0.0):.2f}S"


def iso_time(moment) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"))


class _Statements:
    """Statements assembled from JSON fragments: the parts that repeat (actor, verb, activities) are serialised
    once and reused, the rest per statement; a million-event log is written in well under a minute."""

    def __init__(self, source: LogSource, out):
        self.source, self.out, self.written = source, out, 0
        self.home = site_url()
        self.namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"{self.home}/xapi/{source.pseudonyms.study}")
        self.verbs = {name: _json(verb) for name, verb in VERBS.items()}
        self.extension = f"{self.home}/xapi/extensions/"
        self._activities: dict[tuple, str] = {}

    def emit(
        self,
        key: str,
        actor: str,
        verb: str,
        activity: str,
        moment,
        registration: str,
        result=None,
        extensions=None,
        parent: str | None = None,
    ) -> None:
        context = f'{{"registration":"{registration}","platform":"tutor"'
        if parent:
            context += f',"contextActivities":{{"parent":[{parent}]}}'
        if extensions:
            context += ',"extensions":' + _json({self.extension + k: v for k, v in extensions.items()})
        self.out.write(
            f'{{"id":"{uuid.uuid5(self.namespace, key)}","actor":{actor},"verb":{self.verbs[verb]},'
            f'"object":{activity},"timestamp":"{iso_time(moment)}","context":{context}}},'
            + (f'"result":{_json(result)},' if result else "")
            + '"version":"1.0.3"}\n'
        )
        self.written += 1

    def actor(self, pseudonym: str) -> str:
        return _json({"objectType": "Agent", "account": {"homePage": self.home, "name": pseudonym}})

    def activity(self, path: str, name: str, kind: str = INTERACTION, interaction: str | None = None) -> str:
        key = (path, kind)
        found = self._activities.get(key)
        if found is None:
            definition = {"name": {"en-US": name}, "type": kind}
            if interaction:
                definition["interactionType"] = interaction
            found = self._activities[key] = _json(
                {"objectType": "Activity", "id": f"{self.home}/xapi/activities/{path}", "definition": definition}
            )
        return found

    def registration(self, session_id: int) -> str:
        return str(uuid.uuid5(self.namespace, f"session:{session_id}"))


def write(source: LogSource, out) -> int:
    content = source.content
    make = _Statements(source, out)
    learner = None
    actor = ""
    sessions: dict[int, tuple] = {}  # this learner's sessions: id -> (ended, course id, registration)

    def session_activity(course_id: int) -> str:
        slug = content.courses[course_id]
        return make.activity(f"course/{slug}", f"Practice: {slug}", "http://adlnet.gov/expapi/activities/course")

    def close_sessions():
        for session_id, (ended, course_id, registration) in sessions.items():
            if ended is not None:
                make.emit(
                    f"terminated:{session_id}", actor, "terminated", session_activity(course_id), ended, registration
                )

    for event, where in with_steps(source.events()):
        if event.learner_id != learner:
            close_sessions()
            learner, sessions = event.learner_id, {}
            actor = make.actor(source.pseudonyms.learner(learner))
        course_id, item_slug, item_title, _, step_count = content.items[event.item_id]
        step = content.steps[event.step_id]
        session = sessions.get(event.session_id)
        if session is None:
            session = sessions[event.session_id] = (event.session_ended, course_id, make.registration(event.session_id))
            make.emit(
                f"initialized:{event.session_id}",
                actor,
                "initialized",
                session_activity(course_id),
                event.session_started or event.created_at,
                session[2],
            )
        registration = session[2]
        course_slug = content.courses[course_id]
        problem = make.activity(
            f"{course_slug}/{item_slug}", item_title, "http://adlnet.gov/expapi/activities/question"
        )
        step_activity = make.activity(
            f"{course_slug}/{item_slug}/{step.name}", f"{item_title}, {step.name}", interaction="fill-in"
        )
        changes = source.skill_changes(event)
        skills = [skill for skill, _, _ in changes] or step.skills
        extensions = {
            "item-version": event.item_version,
            "problem-view": where.view,
            "attempt-at-step": where.attempt,
            "first-action": event.first_action,
            "help-level": event.level,
            "ladder-length": step.ladder_length,
            "skills": [content.skills[s][1] for s in skills],
            "policy": event.policy or None,
            "condition": content.conditions.get(event.classroom_id) or None,
            "class": source.pseudonyms.classroom(event.classroom_id) or None,
            "mastery": {content.skills[s][1]: [before, after] for s, before, after in changes},
        }
        result = {"duration": iso_duration(where.duration)} if where.duration is not None else {}
        if event.is_hint:
            extensions.update(
                {"hint-source": event.source, "hint-model": event.model or None, "tutor-action": event.action}
            )
            if event.text:
                result["response"] = event.text
            if source.message(event):
                extensions["learner-message"] = source.message(event)
            make.emit(
                f"hint:{event.id}",
                actor,
                "asked",
                step_activity,
                event.created_at,
                registration,
                result,
                extensions,
                problem,
            )
        else:
            result.update({"success": bool(event.correct), "response": event.answer})
            make.emit(
                f"attempt:{event.id}",
                actor,
                "answered",
                step_activity,
                event.created_at,
                registration,
                result,
                extensions,
                problem,
            )
            if event.correct and step.position == step_count - 1:
                make.emit(
                    f"completed:{event.id}",
                    actor,
                    "completed",
                    problem,
                    event.created_at,
                    registration,
                    {"completion": True, "success": True},
                )
        for skill, before, after in changes:
            if before < MASTERY_THRESHOLD <= after:
                slug, name = content.skills[skill]
                objective = make.activity(
                    f"{course_slug}/skills/{slug}", name, "http://adlnet.gov/expapi/activities/objective"
                )
                make.emit(
                    f"mastered:{event.kind}:{event.id}:{slug}",
                    actor,
                    "mastered",
                    objective,
                    event.created_at,
                    registration,
                    {"score": {"scaled": round(after, 6)}},
                )
    close_sessions()
    return make.written
