"""One tutor reply: a few candidates from the model, each passed through the guard sentence by sentence before
the learner sees it; when none passes, or the model is down or slow, the step's authored ladder, or a generic
scaffolding move for a problem that has none. Pure Python: the app and benchmarks/hints.py run this code."""

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from tutor.hints import guard
from tutor.hints.backends import Backend, BackendError
from tutor.hints.prompts import HintRequest, build_messages

CANDIDATES = 3  # model replies tried before falling back
MAX_SENTENCES = 2  # a hint is one short move
MAX_TOKENS = 80
FIRST_SENTENCE_DEADLINE = 1.0  # seconds: after this the authored ladder answers instead
TOTAL_DEADLINE = 8.0

SCAFFOLD_MOVES = (
    "What exactly does this step ask you to find? Say it in your own words.",
    "Which quantities does the problem give you, and which of them does this step use?",
    "What could the first small step be? Write it down and check it before going on.",
)


@dataclass
class Reply:
    """What the learner was shown and how it was made (stored with the dialogue turn)."""

    text: str
    source: str  # "model", "authored" or "scaffold"
    model: str = ""
    first_sentence_s: float | None = None
    seconds: float = 0.0
    fallback_reason: str = ""  # why the model did not answer, when it did not
    candidates: list[dict] = field(default_factory=list)  # each tried candidate: text, verdict reasons


def guard_context(request: HintRequest) -> guard.GuardContext:
    said = [text for speaker, text in request.dialogue if speaker == "learner"]
    return guard.GuardContext(
        step_answer=request.step_answer,
        final_answer=request.final_answer,
        problem_text="\n".join([request.problem, request.step_prompt, *request.step_answer.get("choices", [])]),
        learner_answers=list(request.learner_answers),
        learner_correct=request.learner_correct,
        bottom_out_allowed=request.bottom_out_allowed,
        learner_messages=tuple(t for t in [*said, request.learner_message] if t.strip()),
    )


def refusals(text: str, context: guard.GuardContext) -> list[str]:
    """Why ``text`` may not be shown: the guard's reasons, and any mention of a secret answer at all (stricter
    than the guard's leak rule, which lets a value through where the problem or the learner already has it)."""
    return list(dict.fromkeys([*guard.check_message(text, context).reasons, *guard.mention_reasons(text, context)]))


def reply(request: HintRequest, backend: Backend | None, **options) -> Reply:
    """The whole reply at once (the benchmark and tests); `reply_stream` is the same, sentence by sentence."""
    *_, last = reply_stream(request, backend, **options)
    return last


def reply_stream(
    request: HintRequest,
    backend: Backend | None,
    *,
    seed: int = 0,
    candidates: int = CANDIDATES,
    first_sentence_deadline: float = FIRST_SENTENCE_DEADLINE,
    total_deadline: float = TOTAL_DEADLINE,
) -> Iterator[str | Reply]:
    """Yield the sentences the learner may see, then the `Reply`. A model sentence is shown only once the
    candidate's text up to it passes every rule of the guard as a whole, quality included (a question or an
    instruction, no script lines): a statement waits for the question that completes it, and a candidate stops at
    the first sentence that would break a rule, keeping what was shown. So the learner sees either model sentences
    that pass together, or the fallback alone; never junk completed by an authored hint."""
    started = time.perf_counter()
    context = guard_context(request)
    tried: list[dict] = []
    reason = "no model is configured"
    if backend is not None:
        messages = build_messages(request)
        reason = "no candidate passed the guard"
        for k in range(candidates):
            shown: list[str] = []
            waiting: list[str] = []  # safe so far, but not yet a move on their own
            tried.append({"text": "", "reasons": []})
            first_at = None
            try:
                for sentence in _sentences_in_time(
                    backend, messages, seed + k, started, first_sentence_deadline, total_deadline
                ):
                    tried[-1]["text"] += sentence + " "
                    draft = " ".join([*shown, *waiting, sentence])
                    reasons = refusals(draft, context)
                    if [r for r in reasons if not r.startswith("quality: neither")]:
                        tried[-1]["reasons"] = reasons  # unsafe, a script line, too long, a copy: stop here
                        break
                    waiting.append(sentence)
                    if not reasons:  # everything so far passes as a whole: show it
                        first_at = first_at or time.perf_counter() - started
                        yield from waiting
                        shown += waiting
                        waiting = []
                    if len(shown) + len(waiting) >= MAX_SENTENCES:
                        break
            except BackendError as error:
                reason = str(error)
                if not shown:
                    break
            if shown:
                if tried[-1]["reasons"]:  # a later sentence broke a rule: the candidate ends before it
                    tried[-1]["dropped"] = tried[-1]["reasons"]
                tried[-1]["reasons"] = []
                text = " ".join(shown)
                yield Reply(text, "model", backend.name, first_at, time.perf_counter() - started, "", tried)
                return
            if not tried[-1]["reasons"]:
                tried[-1]["reasons"] = refusals(tried[-1]["text"].strip(), context) or ["quality: empty"]
    text, source = fallback_text(request)
    yield text
    yield Reply(text, source, backend.name if backend else "", None, time.perf_counter() - started, reason, tried)


def fallback_text(request: HintRequest) -> tuple[str, str]:
    """The authored rung for this level (the bottom-out only where allowed), else an earlier rung not yet said,
    else a generic scaffolding move; never a text the tutor has already said in this dialogue while another is
    left, and never one that may not be shown: authored ladders (OATutor's among them) often state the answer
    before their last rung."""
    context = guard_context(request)
    said = [text for speaker, text in request.dialogue if speaker == "tutor"]
    ladder = list(request.authored_hints)
    if request.bottom_out_allowed and request.bottom_out:
        ladder.append(request.bottom_out)
    if ladder:
        at = min(request.level, len(ladder)) - 1
        for rung in [ladder[at], *reversed(ladder[:at])]:
            if _safe(rung, context) and not any(rung in text for text in said):
                return rung, "authored"
    start = (request.level - 1) % len(SCAFFOLD_MOVES)  # without a ladder, each level has its own move
    moves = SCAFFOLD_MOVES[start:] + SCAFFOLD_MOVES[:start]
    for move in moves:
        if not any(move in text for text in said):
            return move, "scaffold"
    return moves[0], "scaffold"


def _safe(text: str, context: guard.GuardContext) -> bool:
    """No leak, false arithmetic or false praise (an authored hint may be a statement rather than a question)."""
    return not [reason for reason in refusals(text, context) if not reason.startswith("quality")]


def _sentences_in_time(
    backend: Backend, messages: list[dict], seed: int, started: float, first_deadline: float, total_deadline: float
) -> Iterator[str]:
    """The model's reply as sentences, read in a worker thread so that a slow or hung model cannot hold the
    learner up: no first sentence within `first_deadline` of this candidate's start, or no end by `total_deadline`
    after the reply's start, raises BackendError. Leaving early tells the worker to stop generating."""
    out: queue.Queue = queue.Queue()
    stop = threading.Event()

    def produce():
        try:
            stream = backend.stream(messages, max_tokens=MAX_TOKENS, temperature=0.7, seed=seed, timeout=total_deadline)
            for sentence in guard.sentences(stream):
                if stop.is_set():
                    break
                out.put(sentence)
        except BackendError as error:
            out.put(error)
        except Exception as error:  # a backend bug must not take the hint panel down
            out.put(BackendError(f"the model failed: {type(error).__name__}"))
        out.put(None)

    threading.Thread(target=produce, daemon=True).start()
    end = started + total_deadline
    deadline = min(time.perf_counter() + first_deadline, end)
    try:
        while True:
            try:
                item = out.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                raise BackendError("the model is too slow right now") from None
            if item is None:
                return
            if isinstance(item, BackendError):
                raise item
            deadline = end
            yield item
    finally:
        stop.set()
