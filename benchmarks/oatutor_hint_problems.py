"""OATutor steps as scripted-learner problems for the hint benchmark (benchmarks/hints.py).

    python benchmarks/oatutor_hint_problems.py --data ../shared/data --limit 500 --seed 0 --out /tmp/hint_problems.jsonl

``--data`` is a data folder holding ``content/oatutor/problems.jsonl.gz`` (or the path of that file itself): a
user's machine has no ../shared. Every problem goes through the OATutor importer (knowledge/content/oatutor.py),
so the answer specs and hint ladders are exactly those the app would import. Steps are kept when they come from a
mathematics course (physics, chemistry and the Data 8 programming worksheets are left out) and a wrong answer can
be derived for them; a seeded sample of those is written, one JSON object a line:

    {"id", "question", "answer", "student_answer", "student_work",
     "answer_spec", "final_answer" (the problem's last step's spec when this step is not the last, else null; also
     null when the derived wrong answer is a correct answer of that last step, evidently an independent part),
     "problem", "step_prompt", "hints" (authored non-bottom-out texts), "bottom_out", "slip", "course", "source"}

``question`` is the problem text followed by the step's prompt; ``answer`` is the correct answer as text (the
correct choice's text for multiple choice). The learner's wrong answer is derived deterministically from the step
id and the seed, as a typical slip: a wrong operation on two of the problem's numbers, a sign error, an off-by-one
or a misplaced decimal point for numbers; a changed coefficient, constant or sign for expressions; the first wrong
choice for multiple choice; a changed number or the opposite word for text answers. Every derived answer is
checked to grade as wrong with tutor.grading.grade (and to be readable by it); a step with no such answer is
skipped and counted.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import re
import sys
from collections import Counter
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from knowledge.content.oatutor import _Converter  # noqa: E402
from tutor.grading import AnswerFormatError, canonical_answer, grade, spec_number  # noqa: E402

DATA_FILE = Path("content/oatutor/problems.jsonl.gz")
NOT_MATHEMATICS = ("physics", "chemistry", "data 8")  # course names (lower case) whose steps are left out
ANTONYMS = {
    "yes": "no",
    "no": "yes",
    "y": "n",
    "n": "y",
    "true": "false",
    "false": "true",
    "up": "down",
    "down": "up",
    "increasing": "decreasing",
    "decreasing": "increasing",
    "left": "right",
    "right": "left",
    "above": "below",
    "below": "above",
    "positive": "negative",
    "negative": "positive",
    "odd": "even",
    "even": "odd",
    "maximum": "minimum",
    "minimum": "maximum",
    "max": "min",
    "min": "max",
    "horizontal": "vertical",
    "vertical": "horizontal",
    "linear": "quadratic",
    "dne": "0",
}
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")
_MATH_NUMBER = re.compile(r"(?<![A-Za-z_\d.])\d+(?:\.\d+)?")


def _rng(seed: int, key: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _is_wrong(spec: dict, answer: str) -> bool:
    try:
        return not grade(spec, answer).correct
    except (AnswerFormatError, ValueError):
        return False


def _is_right(spec: dict, answer: str) -> bool:
    try:
        return grade(spec, answer).correct
    except (AnswerFormatError, ValueError):
        return False


def _show(value: Fraction, like: str = "") -> str:
    """A number as a learner would write it: an integer, a decimal with the answer's decimals, or a fraction."""
    if value.denominator == 1:
        return str(value.numerator)
    if "/" in like and "." not in like:
        return f"{value.numerator}/{value.denominator}"
    if "." in like:
        return f"{float(value):.{len(like.split('.')[1])}f}"
    return f"{float(value):.2f}".rstrip("0").rstrip(".")


def _problem_numbers(text: str) -> list[Fraction]:
    """The numbers written in the problem (at most 12, first ones first, no repeats)."""
    numbers: list[Fraction] = []
    for match in _NUMBER.finditer(text.replace(",", "")):
        try:
            value = Fraction(match.group())
        except (ValueError, ZeroDivisionError):
            continue
        if value not in numbers:
            numbers.append(value)
    return numbers[:12]


def _numeric_slips(spec: dict, problem: str, rng: random.Random) -> list[tuple[str, str, str]]:
    """(slip kind, wrong answer, the learner's account of the work) for a numeric answer, best first."""
    percent = bool(spec.get("percent"))
    target = spec_number(spec["value"], percent)
    written = str(spec["value"]).rstrip("%")
    suffix = "%" if percent else ""
    shown_target = target * 100 if percent else target
    slips: list[tuple[str, str, str]] = []

    numbers = _problem_numbers(problem)
    pairs = [(a, b) for i, a in enumerate(numbers) for b in numbers[i + 1 :]]
    rng.shuffle(pairs)
    operations = [
        ("added", lambda a, b: a + b, "I added {a} and {b}"),
        ("subtracted", lambda a, b: a - b, "I took {b} away from {a}"),
        ("multiplied", lambda a, b: a * b, "I multiplied {a} by {b}"),
        ("divided", lambda a, b: a / b if b else None, "I divided {a} by {b}"),
    ]
    for a, b in pairs[:6]:
        for _, apply, account in rng.sample(operations, len(operations)):
            value = apply(a, b)
            if value is None or value == shown_target or abs(value) > 10**7:
                continue
            answer = _show(value, written) + suffix
            work = account.format(a=_show(a), b=_show(b))
            slips.append(("wrong operation", answer, f"I got {answer} because {work}."))
            break
        if slips:
            break

    if shown_target != 0:
        answer = _show(-shown_target, written) + suffix
        slips.append(("sign error", answer, f"I got {answer}. I did the same steps, so I think my signs are right."))
    if shown_target.denominator == 1:
        delta = rng.choice((1, -1))
        answer = _show(shown_target + delta, written) + suffix
        slips.append(("off by one", answer, f"I got {answer}, I worked it out step by step."))
    else:
        answer = _show(shown_target * 10, written) + suffix
        slips.append(("decimal point", answer, f"My answer is {answer}, I moved the decimal point once."))
    answer = _show(shown_target * 2, written) + suffix
    slips.append(("doubled", answer, f"I got {answer}. I multiplied by 2 at the end."))
    first, rest = slips[:1], slips[1:]  # the wrong operation, when there is one, is as likely as the rest
    rng.shuffle(rest)
    return first + rest if rng.random() < 0.5 else rest + first


def _expression_slips(spec: dict, rng: random.Random) -> list[tuple[str, str, str]]:
    value = spec["value"]
    slips: list[tuple[str, str, str]] = []
    numbers = list(_MATH_NUMBER.finditer(value))
    if numbers:
        match = rng.choice(numbers)
        old = Fraction(match.group())
        new = _show(old + 1 if old.denominator == 1 else old * 2, match.group())
        wrong = value[: match.start()] + new + value[match.end() :]
        slips.append(("changed number", wrong, f"I simplified it and got {wrong}."))
    signs = [m.start() for m in re.finditer(r"(?<=[\w)\s])\s*[+-]\s*(?=[\w(])", value)]
    if signs:
        at = rng.choice(signs)
        part = value[at:]
        flipped = part.replace("+", "#", 1) if "+" in part[:3] else part.replace("-", "+", 1)
        wrong = value[:at] + flipped.replace("#", "-", 1)
        slips.append(("sign error", wrong, f"I got {wrong}; I expanded the brackets and collected the terms."))
    wrong = f"-({value})" if not value.startswith("-") else value[1:]
    slips.append(("overall sign", wrong, f"My answer is {wrong}."))
    slips.append(("extra term", f"{value} + 1", f"I got {value} + 1, I kept the 1 from the last line."))
    return slips


def _choice_slips(spec: dict) -> list[tuple[str, str, str]]:
    correct = spec["correct"] if isinstance(spec["correct"], list) else [spec["correct"]]
    slips = []
    for index, text in enumerate(spec["choices"]):
        if index not in correct:
            letter = chr(65 + index) if index < 26 else str(index)
            slips.append(("first wrong choice", text, f"I picked {letter}, {text}, because it looked right to me."))
            break
    return slips


def _text_slips(spec: dict, rng: random.Random) -> list[tuple[str, str, str]]:
    value = spec["value"] if isinstance(spec["value"], str) else spec["value"][0]
    slips = []
    opposite = ANTONYMS.get(value.strip().lower())
    if opposite:
        slips.append(("opposite", opposite, f"I said {opposite}, that's what I thought it was."))
    numbers = list(_MATH_NUMBER.finditer(value))
    if numbers:
        match = rng.choice(numbers)
        old = Fraction(match.group())
        new = _show(old + 1 if old.denominator == 1 else old * 2, match.group())
        wrong = value[: match.start()] + new + value[match.end() :]
        slips.append(("changed number", wrong, f"I got {wrong} from my working."))
    return slips


def _sentence(text: str) -> str:
    """One sentence of the learner's: no doubled full stop when the answer itself ends in one."""
    return re.sub(r"\.\.$", ".", text)


def wrong_answer(spec: dict, problem: str, key: str, seed: int) -> tuple[str, str, str] | None:
    """A plausible wrong answer (slip kind, answer, the learner's account of the work), or None."""
    rng = _rng(seed, key)
    kind = spec["type"]
    if kind == "numeric":
        slips = _numeric_slips(spec, problem, rng)
    elif kind == "expression":
        slips = _expression_slips(spec, rng)
    elif kind == "choice":
        slips = _choice_slips(spec)
    else:
        slips = _text_slips(spec, rng)
    for slip in slips:
        if _is_wrong(spec, slip[1]):
            return slip[0], slip[1], _sentence(slip[2])
    return None


def answer_text(spec: dict) -> str:
    """The correct answer as a learner would read it (the correct choice's text for multiple choice)."""
    if spec["type"] == "choice":
        correct = spec["correct"] if isinstance(spec["correct"], list) else [spec["correct"]]
        return "; ".join(spec["choices"][i] for i in correct)
    if spec["type"] == "numeric" and spec.get("percent") and not str(spec["value"]).endswith("%"):
        return f"{spec['value']}%"
    return canonical_answer(spec)


def _lines(path: Path):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        yield from handle


def data_file(data: str | Path) -> Path:
    path = Path(data)
    return path / DATA_FILE if path.is_dir() else path


def convert(path: Path, limit: int | None, seed: int) -> tuple[list[dict], Counter]:
    """The seeded sample of benchmark problems and the counts of what was kept and skipped."""
    converter = _Converter()
    counts: Counter = Counter()
    candidates = []
    for line in _lines(path):
        if not line.strip():
            continue
        record = json.loads(line)
        course = (record.get("courseName") or "").lower()
        if any(word in course for word in NOT_MATHEMATICS):
            counts["skipped: not a mathematics course"] += len(record.get("steps") or [])
            continue
        item = converter.problem(record)
        if not item:
            continue
        final = item["steps"][-1]["answer"]
        for number in range(len(item["steps"])):
            candidates.append((item, number, final, record.get("courseName") or ""))
    counts["importable mathematics steps"] = len(candidates)
    order = list(range(len(candidates)))
    random.Random(seed).shuffle(order)
    problems = []
    for index in order:
        if limit is not None and len(problems) >= limit:
            break
        item, number, final, course = candidates[index]
        step = item["steps"][number]
        spec = step["answer"]
        step_id = f"{item['source'].removeprefix('oatutor:')}#{number + 1}"
        problem_text = "\n\n".join(t for t in (item["title"], item["body"]) if t and t.strip())
        slip = wrong_answer(spec, f"{problem_text}\n{step['prompt']}", step_id, seed)
        if slip is None:
            counts[f"skipped: no wrong answer derivable ({spec['type']})"] += 1
            continue
        kind, student_answer, work = slip
        final_answer = final if number < len(item["steps"]) - 1 and final != spec else None
        if final_answer is not None and _is_right(final_answer, student_answer):
            # The "final" step is another, independent part whose answer the learner gave here: no final answer.
            counts["final answer dropped: the wrong answer is the last part's answer"] += 1
            final_answer = None
        counts[f"slip: {kind}"] += 1
        counts[f"answer type: {spec['type']}"] += 1
        hints = [rung["text"] for rung in step["hints"] if rung["kind"] != "bottom_out"]
        bottom = [rung["text"] for rung in step["hints"] if rung["kind"] == "bottom_out"]
        problems.append(
            {
                "id": step_id,
                "question": f"{problem_text}\n\n{step['prompt']}".strip(),
                "answer": answer_text(spec),
                "student_answer": student_answer,
                "student_work": work,
                "answer_spec": spec,
                "final_answer": final_answer,
                "problem": problem_text,
                "step_prompt": step["prompt"],
                "hints": hints,
                "bottom_out": bottom[0] if bottom else "",
                "slip": kind,
                "course": course,
                "source": item["license"],
            }
        )
    counts["written"] = len(problems)
    return problems, counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        default=str(ROOT.parent / "shared" / "data"),
        help="a data folder with content/oatutor/problems.jsonl.gz, or that file itself",
    )
    parser.add_argument("--limit", type=int, default=500, help="steps to write (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="JSON lines file to write")
    args = parser.parse_args(argv)
    path = data_file(args.data)
    if not path.is_file():
        parser.error(f"no OATutor problems at {path}")
    problems, counts = convert(path, args.limit or None, args.seed)
    with open(args.out, "w", encoding="utf-8") as out:
        for problem in problems:
            out.write(json.dumps(problem, ensure_ascii=False) + "\n")
    for key, value in sorted(counts.items()):
        print(f"{key}: {value}")
    print(f"wrote {len(problems)} problems to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
