"""What every writer reads: the log stream, the content it refers to, the study's pseudonyms, and the step-level
bookkeeping (problem views, attempts at a step, durations) that several formats share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from tutor.exports.log import Content, LogEvent, LogFilter, count_log, load_content, stream_log
from tutor.exports.pseudonyms import Pseudonyms
from tutor.models import User

PROGRESS_EVERY = 10_000
DATASHOP_TIME = "%Y-%m-%d %H:%M:%S.%f"  # written to the millisecond: yyyy-MM-dd HH:mm:ss.SSS, in UTC


def datashop_time(moment: datetime | None) -> str:
    return moment.strftime(DATASHOP_TIME)[:-3] if moment else ""


def seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


class LogSource:
    """One export's input. `events()` streams the log once, reporting progress as (done, total) events."""

    def __init__(
        self,
        log_filter: LogFilter,
        study: str = "default",
        include_identities: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ):
        self.filter = log_filter
        self.pseudonyms = Pseudonyms(study)
        self.include_identities = include_identities
        self.progress = progress
        self.content: Content = load_content(log_filter)
        self.total = count_log(log_filter)
        self._usernames: dict[int, str] = {}

    def events(self) -> Iterator[LogEvent]:
        done = 0
        for event in stream_log(self.filter):
            yield event
            done += 1
            if self.progress and done % PROGRESS_EVERY == 0:
                self.progress(done, self.total)
        if self.progress:
            self.progress(done, self.total)

    def username(self, learner_id: int) -> str:
        """Only for exports an admin allowed to include identities."""
        if not self.include_identities:
            return ""
        if learner_id not in self._usernames:
            self._usernames[learner_id] = User.objects.filter(pk=learner_id).values_list("username", flat=True).first()
        return self._usernames[learner_id] or ""

    def message(self, event: LogEvent) -> str:
        """A learner's own words to the tutor are free text (they may name people): identities exports only."""
        return event.message if self.include_identities else ""

    def course_of(self, event: LogEvent) -> int:
        return self.content.items[event.item_id][0]

    def skill_changes(self, event: LogEvent) -> list[tuple[int, float, float]]:
        return self.content.changed_skills(self.course_of(event), event.mastery_change)

    def event_skills(self, event: LogEvent) -> list[int]:
        """The skills an event exercised: those its mastery update touched, else the step's."""
        changed = [skill for skill, _, _ in self.skill_changes(event)]
        return changed or self.content.steps[event.step_id].skills


@dataclass
class StepContext:
    """Where an event sits: the learner's `view`th time on its problem, its `attempt`th transaction on the step
    in that view, and the seconds since the previous transaction (or since the problem was shown)."""

    view: int
    view_key: tuple
    attempt: int
    duration: float | None


def with_steps(events: Iterator[LogEvent]) -> Iterator[tuple[LogEvent, StepContext]]:
    """Annotate a learner-ordered stream with problem views, attempts at step and durations. State is kept per
    learner only, and dropped when the next learner starts."""
    learner = None
    views: dict[int, int] = {}
    attempts: dict[int, int] = {}
    last_in_session: dict[int, datetime] = {}
    current: tuple | None = None  # (session, item, shown at)
    view = 0
    for event in events:
        if event.learner_id != learner:
            learner, views, last_in_session, current = event.learner_id, {}, {}, None
        shown = event.started_at
        new_view = (
            current is None
            or current[:2] != (event.session_id, event.item_id)
            or (shown is not None and current[2] is not None and shown != current[2])
        )
        if new_view:
            views[event.item_id] = views.get(event.item_id, 0) + 1
            view = views[event.item_id]
            current = (event.session_id, event.item_id, shown)
            attempts = {}
        elif current[2] is None and shown is not None:
            current = (current[0], current[1], shown)
        attempts[event.step_id] = attempts.get(event.step_id, 0) + 1
        previous = last_in_session.get(event.session_id)
        if new_view and shown is not None:
            previous = shown
        duration = (event.created_at - previous).total_seconds() if previous is not None else None
        last_in_session[event.session_id] = event.created_at
        yield (
            event,
            StepContext(view, (learner, event.session_id, event.item_id, view), attempts[event.step_id], duration),
        )
