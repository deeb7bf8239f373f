"""Import OATutor content (problems.jsonl[.gz]) as a normalised course package.

OATutor (https://github.com/CAHLR/OATutor) stores one problem per JSON line: steps with answers and a
hint list of hints, scaffolds (sub-questions with their own answers) and solutions. ``read_oatutor``
maps that onto the package structure of docs/course-format.md, so the same loader stores either.
What cannot be imported faithfully is skipped and counted by reason in the report rather than guessed
at. Pure Python. Every answer spec is checked with ``tutor.grading.validate_spec`` (imported lazily);
numbers and fractions are recognised with Python's own parser and LaTeX that cannot be converted is
rejected by plain string checks, so only real expressions ever reach sympy.

Mapping choices worth knowing:
- A step that cannot be imported is dropped and the rest of its problem kept; a problem left without
  steps is skipped. A scaffold whose answer cannot be imported is dropped as a rung, keeping the step.
- Hints keep the order of the file: within a step, OATutor's ``dependencies`` only point back to earlier
  hints (a few point into other steps; those are ignored), so the file order is already a valid climbing
  order. A solution becomes the ``bottom_out``, placed last. A hint or scaffold that states the step's answer (by
  the tutor guard's leak rule; OATutor types many worked steps as plain hints) joins it, ahead of the solution,
  so that a class whose tutor never gives the answer does not show it on the Hint button either.
- OATutor has no prerequisite graph, so skills get no ``requires`` (and default BKT parameters).
- ``$$...$$`` is inline maths in OATutor, so it becomes ``$...$`` where that is unambiguous.
"""

import ast
import gzip
import json
import re
import unicodedata
from collections import Counter, defaultdict
from fractions import Fraction
from pathlib import Path

from knowledge.content.package import DEFAULT_BKT, FORMAT, MAX_SLUG_LENGTH

EXAMPLES_PER_REASON = 5
DEFAULT_PROMPT = "Answer the question above."
NOTES = [
    "OATutor has no prerequisite graph: skills have no 'requires'.",
    "Hint order is the file's order (within a step, OATutor dependencies only point to earlier hints).",
    "A solution hint becomes the bottom_out rung, placed last.",
    "Hints and scaffolds that state the step's answer (by the tutor guard's leak rule) join the bottom_out rung.",
    "Lesson and course names, figures and sub-hints of scaffolds are not imported.",
    "Repeated multiple-choice options are merged into one.",
]


class Unimportable(Exception):
    """This part cannot be imported faithfully; the message is the reason counted in the report."""


# ---------------------------------------------------------------- text

def _slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:MAX_SLUG_LENGTH].rstrip("-") or "x"


def _unique(slug: str, taken: set) -> str:
    candidate, n = slug, 1
    while candidate in taken:
        n += 1
        suffix = f"-{n}"
        candidate = slug[:MAX_SLUG_LENGTH - len(suffix)] + suffix
    taken.add(candidate)
    return candidate


def _humanise(skill_id: str) -> str:
    words = re.sub(r"[_\s]+", " ", skill_id).strip()
    return words[:1].upper() + words[1:]


def display_text(text: str) -> str:
    """OATutor Markdown as ours: a literal backslash-n outside maths is a line break, and ``$$x$$``
    (inline maths in OATutor) becomes ``$x$`` unless stray dollars (money, odd $$) make that ambiguous.
    """
    if not text:
        return ""
    parts = text.split("$$")
    for i in range(0, len(parts), 2):  # even parts are outside maths
        parts[i] = parts[i].replace("\\n", "\n")
    if len(parts) % 2 == 0 or any("$" in parts[i] for i in range(0, len(parts), 2)):
        return "$$".join(parts)
    return "".join(part if i % 2 == 0 else f"${part.strip()}$" for i, part in enumerate(parts))


# ---------------------------------------------------------------- answers

_SIMPLE_COMMANDS = {
    r"\cdot": "*", r"\times": "*", r"\div": "/", r"\pi": "pi", r"\left": "", r"\right": "",
    r"\,": "", r"\;": "", r"\!": "", r"\:": "", r"\ ": "", r"\%": "%",
}
_FUNCTION_COMMANDS = ("sin", "cos", "tan", "sec", "csc", "cot", "ln", "log", "exp")
_EXPRESSION_CHARS = re.compile(r"[A-Za-z0-9+\-*/^().=\s]*\Z")
_COMMAND = re.compile(r"\\([A-Za-z]+|.)")


def _braced(text: str, start: int) -> tuple[str, int]:
    """The contents of the {...} group at ``start`` and the index after it."""
    if start >= len(text) or text[start] != "{":
        raise Unimportable("LaTeX the importer cannot convert")
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + 1:i], i + 1
    raise Unimportable("LaTeX the importer cannot convert")


def latex_to_plain(text: str) -> str:
    """A LaTeX answer as plain maths (``\\frac{1}{2}`` -> ``((1)/(2))``); Unimportable when it cannot be."""
    text = text.replace("$$", "").strip()
    if text.startswith("$") and text.endswith("$"):
        text = text[1:-1].strip()
    out, i = [], 0
    while i < len(text):
        if text[i] != "\\":
            out.append({"{": "(", "}": ")"}.get(text[i], text[i]))
            i += 1
            continue
        match = _COMMAND.match(text, i)
        command, i = match.group(0), match.end()
        if command in _SIMPLE_COMMANDS:
            out.append(_SIMPLE_COMMANDS[command])
        elif command in (r"\frac", r"\dfrac", r"\tfrac"):
            top, i = _braced(text, i)
            bottom, i = _braced(text, i)
            out.append(f"(({latex_to_plain(top)})/({latex_to_plain(bottom)}))")
        elif command == r"\sqrt":
            if text.startswith("[", i):
                end = text.index("]", i)
                index, i = text[i + 1:end], end + 1
                inner, i = _braced(text, i)
                out.append(f"(({latex_to_plain(inner)})^(1/({latex_to_plain(index)})))")
            else:
                inner, i = _braced(text, i)
                out.append(f"sqrt({latex_to_plain(inner)})")
        elif command[1:] in _FUNCTION_COMMANDS:
            out.append(command[1:])
        else:
            raise Unimportable("LaTeX the importer cannot convert")
    return "".join(out).strip()


def _exact_number(text: str):
    """The number a plain answer like ``-3``, ``0.25``, ``1,000`` or ``((3)/(4))`` stands for, or None.

    Read with Python's own expression parser and fractions, far cheaper than sympy.
    """
    text = text.replace(" ", "")
    if re.fullmatch(r"[-+]?\d{1,3}(,\d{3})+(\.\d+)?", text):
        text = text.replace(",", "")
    if not text or not re.fullmatch(r"[-+()\d./]*", text):
        return None
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        return None

    def value(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return Fraction(ast.get_source_segment(text, node) or str(node.value))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = value(node.operand)
            return -inner if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            bottom = value(node.right)
            if bottom == 0:
                raise ZeroDivisionError
            return value(node.left) / bottom
        raise ValueError

    try:
        number = value(tree)
    except (ValueError, ZeroDivisionError):
        return None
    if number.denominator == 1:
        return int(number)
    decimal = text.strip("()")
    if re.fullmatch(r"[-+]?\d*\.\d+", decimal):
        return decimal  # keep "0.25" as written: exact, and what the learner is asked to type
    return f"{number.numerator}/{number.denominator}"


_FUNCTION_POWER = re.compile(r"\b(sin|cos|tan)\^\(?(\d+)\)?\(")


def _function_powers(plain: str) -> str:
    """cos^2(x) as (cos(x))^2, the way the grader reads it."""
    while match := _FUNCTION_POWER.search(plain):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(plain)):
            depth += {"(": 1, ")": -1}.get(plain[end], 0)
            if depth == 0:
                break
        if depth:
            raise Unimportable("answer is neither a number nor an expression")
        argument = plain[match.end():end]
        plain = f"{plain[:match.start()]}({match[1]}({argument}))^{match[2]}{plain[end + 1:]}"
    return plain


def _arithmetic_spec(answers: list) -> dict:
    if len(answers) != 1:
        raise Unimportable("several answers for an arithmetic step")
    raw = answers[0]
    plain = latex_to_plain(raw)
    if not plain:
        raise Unimportable("no answer")
    if plain.endswith("%") and _exact_number(plain[:-1]) is not None:
        return {"type": "numeric", "value": plain.replace(" ", ""), "percent": True}
    number = _exact_number(plain)
    if number is not None:
        return {"type": "numeric", "value": number}
    if plain.count("|") == 2:  # |x| -> abs(x)
        plain = plain.replace("|", "abs(", 1).replace("|", ")", 1)
    plain = _function_powers(plain)
    if "," in plain:
        raise Unimportable("list, point or interval answer (not one expression)")
    if not _EXPRESSION_CHARS.match(plain) or plain.count("(") != plain.count(")"):
        raise Unimportable("answer is neither a number nor an expression")
    return {"type": "expression", "value": plain}


def _plain_text(raw: str) -> str:
    text = raw.replace("$$", "").strip()
    if "\\" in text:
        text = latex_to_plain(text)
    return re.sub(r"\s+", " ", text)


def _choice_key(text: str) -> str:
    """A choice as the grader compares texts (spacing, case, trailing dots), ignoring maths dollars."""
    text = unicodedata.normalize("NFKC", display_text(text).replace("$", ""))
    return " ".join(text.split()).rstrip(".!, ").casefold()


def _distinct_choices(choices) -> list:
    """The choices without repeats: OATutor often lists the right answer twice, and the grader rightly
    refuses a choice list with two equal texts."""
    distinct = {}
    for choice in choices or []:
        if isinstance(choice, str) and choice.strip():
            distinct.setdefault(_choice_key(choice), choice)
    return list(distinct.values())


def answer_spec(answers, problem_type, answer_type, choices) -> dict:
    """The answer spec for one OATutor step or scaffold; Unimportable says why there is none."""
    answers = [a.strip() for a in answers or [] if isinstance(a, str) and a.strip()]
    if not answers:
        raise Unimportable("no answer")
    if problem_type == "MultipleChoice":
        choices = _distinct_choices(choices)
        if not choices:
            raise Unimportable("multiple choice without choices")
        wanted = {_choice_key(a) for a in answers}
        correct = [i for i, choice in enumerate(choices) if _choice_key(choice) in wanted]
        if not correct:
            raise Unimportable("multiple-choice answer not among the choices")
        return {"type": "choice", "choices": [display_text(c) for c in choices],
                "correct": correct[0] if len(correct) == 1 else correct}
    if problem_type != "TextBox":
        raise Unimportable("unknown problemType")
    if answer_type == "arithmetic":
        return _arithmetic_spec(answers)
    if answer_type == "string":
        values = list(dict.fromkeys(_plain_text(a) for a in answers))
        return {"type": "text", "value": values[0] if len(values) == 1 else values}
    raise Unimportable("unknown answerType")


def _checked(spec: dict) -> dict:
    from tutor.grading import validate_spec  # lazy: the grader is a separate module

    if validate_spec(spec):
        raise Unimportable(f"{spec['type']} answer refused by the grader")
    return spec


# ---------------------------------------------------------------- problems

def _credit(source, license) -> str:
    if source and license:
        return f"{source} ({license})"
    return source or license or ""


class _Converter:
    def __init__(self):
        self.report = {
            "problems_read": 0, "items_written": 0, "steps_written": 0,
            "skipped": Counter(), "rungs_dropped": Counter(), "adjusted": Counter(),
            "examples": defaultdict(list), "notes": list(NOTES),
        }
        self.item_slugs: set = set()
        self.skill_slugs: dict = {}  # OATutor skill id -> slug
        self.taken_skill_slugs: set = set()
        self.skills: list = []

    def count(self, kind: str, reason: str, example: str, n: int = 1):
        self.report[kind][reason] += n
        examples = self.report["examples"][reason]
        if len(examples) < EXAMPLES_PER_REASON and example not in examples:
            examples.append(example)

    def skill(self, skill_id: str) -> str:
        if skill_id not in self.skill_slugs:
            slug = _unique(_slugify(skill_id), self.taken_skill_slugs)
            self.skill_slugs[skill_id] = slug
            self.skills.append({"slug": slug, "name": _humanise(skill_id), "description": "",
                                "requires": [], "bkt": dict(DEFAULT_BKT)})
        return self.skill_slugs[skill_id]

    def problem(self, record: dict):
        """The item for one OATutor problem, or None when it is skipped (and counted)."""
        problem_id = str(record.get("id", ""))
        if record.get("variabilization"):
            self.count("skipped", "problem: uses OATutor variabilization", problem_id)
            return None
        if not record.get("steps"):
            self.count("skipped", "problem: no steps", problem_id)
            return None
        steps = []
        body = display_text(record.get("body") or "")
        for raw_step in record["steps"]:
            step_id = str(raw_step.get("id", problem_id))
            try:
                steps.append(self.step(raw_step, step_id, body))
            except Unimportable as skip:
                self.count("skipped", f"step: {skip}", step_id)
        if not steps:
            self.count("skipped", "problem: no importable step", problem_id)
            return None
        if "##figure" in body or any("##figure" in s["prompt"] for s in steps):
            self.count("adjusted", "refers to a figure that is not imported", problem_id)
        self.report["items_written"] += 1
        self.report["steps_written"] += len(steps)
        return {
            "slug": _unique(_slugify(problem_id), self.item_slugs),
            "title": display_text(record.get("title") or "") or problem_id,
            "body": body,
            "skills": list(dict.fromkeys(s for step in steps for s in step["skills"])),
            "difficulty": None,
            "template": None,
            "source": f"oatutor:{problem_id}",
            "license": self.license(record),
            "steps": steps,
        }

    def license(self, record: dict) -> str:
        parts = [record.get("license") or "license not stated"]
        if record.get("oer"):
            parts.append(f"from {record['oer']}")
        hint_credits = {_credit(h.get("oer"), h.get("license"))
                        for step in record.get("steps", []) for h in step.get("hints", [])}
        hint_credits.discard("")
        if hint_credits:
            parts.append("hints: " + ", ".join(sorted(hint_credits)))
        return "; ".join(parts)

    def step(self, raw: dict, step_id: str, body: str) -> dict:
        if raw.get("variabilization"):
            raise Unimportable("uses OATutor variabilization")
        skill_ids = [s for s in raw.get("skills") or [] if isinstance(s, str) and s.strip()]
        if not skill_ids:
            raise Unimportable("no skills")
        answer = _checked(answer_spec(raw.get("stepAnswer"), raw.get("problemType"),
                                      raw.get("answerType"), raw.get("choices")))
        prompt = "\n\n".join(display_text(t) for t in (raw.get("stepTitle"), raw.get("stepBody")) if t)
        if not prompt.strip():
            self.count("adjusted", f"empty step prompt: used '{DEFAULT_PROMPT}'", step_id)
            prompt = DEFAULT_PROMPT
        hints = self.hints(raw.get("hints") or [], step_id, answer, f"{body}\n{prompt}")
        return {"prompt": prompt, "answer": answer, "skills": [self.skill(s) for s in skill_ids], "hints": hints}

    def hints(self, raw_hints: list, step_id: str, step_answer: dict, problem_text: str) -> list:
        ladder, solutions, seen = [], [], set()
        for raw in raw_hints:
            hint_id = str(raw.get("id", step_id))
            if hint_id in seen:
                self.count("rungs_dropped", "duplicate hint id", hint_id)
                continue
            seen.add(hint_id)
            if raw.get("subHints"):
                self.count("rungs_dropped", "sub-hints of a scaffold (nesting not supported)", hint_id,
                           len(raw["subHints"]))
            if raw.get("variabilization"):
                self.count("rungs_dropped", "uses OATutor variabilization", hint_id)
                continue
            title, text = display_text(raw.get("title") or ""), display_text(raw.get("text") or "")
            text = f"**{title}**\n\n{text}" if title and text and title != text else (text or title)
            if not text.strip():
                self.count("rungs_dropped", "empty hint", hint_id)
                continue
            kind = raw.get("type")
            if kind == "hint":
                ladder.append({"kind": "hint", "text": text})
            elif kind == "scaffold":
                try:
                    answer = _checked(answer_spec(raw.get("hintAnswer"), raw.get("problemType"),
                                                  raw.get("answerType"), raw.get("choices")))
                except Unimportable as skip:
                    self.count("rungs_dropped", f"scaffold: {skip}", hint_id)
                    continue
                ladder.append({"kind": "scaffold", "text": text, "answer": answer})
            elif kind == "solution":
                solutions.append({"kind": "bottom_out", "text": text})
            else:
                self.count("rungs_dropped", "unknown hint type", hint_id)
        if len(solutions) > 1:
            extra = len(solutions) - 1
            self.count("rungs_dropped", "more than one solution (kept the first)", step_id, extra)
        stating = [rung for rung in ladder if _states_answer(rung["text"], step_answer, problem_text)]
        if stating:
            self.count("adjusted", "hint states the step's answer: moved into the worked answer", step_id,
                       len(stating))
            ladder = [rung for rung in ladder if rung not in stating]
        worked = [rung["text"] for rung in stating + solutions[:1]]
        return ladder + ([{"kind": "bottom_out", "text": "\n\n".join(worked)}] if worked else [])


def _states_answer(text: str, answer: dict, problem_text: str) -> bool:
    """Whether the tutor's guard would refuse this rung for giving the step's answer away: then it is a worked
    answer (a bottom_out rung), whatever OATutor typed it as."""
    from tutor.hints.guard import GuardContext, leak_values  # lazy: sympy; the guard's rule is the app's rule

    shown = "\n".join([problem_text, *answer.get("choices", [])])  # the step as the dialogue's guard sees it
    context = GuardContext(step_answer=answer, final_answer=None, problem_text=shown, learner_answers=[],
                           learner_correct=None)
    return bool(leak_values(text, context))


def _lines(path: Path):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        yield from handle


def read_oatutor(path, course_slug="oatutor", title="OATutor content pool", progress=None):
    """Convert an OATutor problems.jsonl(.gz) file; return (package dict, report dict).

    ``progress``, when given, is called as progress(done, total) now and then (total may be None).
    """
    path = Path(path)
    total = sum(1 for line in _lines(path) if line.strip()) if progress else None
    converter = _Converter()
    items = []
    for number, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        converter.report["problems_read"] += 1
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            converter.count("skipped", "problem: not valid JSON", f"line {number}")
            continue
        if not isinstance(record, dict):
            converter.count("skipped", "problem: not a JSON object", f"line {number}")
            continue
        item = converter.problem(record)
        if item:
            items.append(item)
        if progress and converter.report["problems_read"] % 200 == 0:
            progress(converter.report["problems_read"], total)
    if progress:
        progress(converter.report["problems_read"], total)

    used = {s for item in items for s in item["skills"]} | {
        s for item in items for step in item["steps"] for s in step["skills"]}
    package = {
        "format": FORMAT,
        "course": {"slug": course_slug, "title": title,
                   "description": f"Imported from OATutor ({path.name}).", "language": "en"},
        "skills": [s for s in converter.skills if s["slug"] in used],
        "items": items,
    }
    report = converter.report
    for key in ("skipped", "rungs_dropped", "adjusted", "examples"):
        report[key] = dict(report[key])
    return package, report
