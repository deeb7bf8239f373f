"""The guard every tutor message passes before a learner sees it.

A small local model writes the Socratic hints; it is weak at maths and a learner can talk it into things. Each
message is checked against four rules, and each broken rule adds a reason to the verdict:

- ``leak``: the message must not give away the step's answer or the problem's final answer in any form the
  grader would accept: numbers within the spec's tolerance (``0.5``, ``1/2``, ``50%``, ``one half``, ``$5.00``,
  ``5 cm``, ``twelve``, ``a dozen``), expressions by sympy equivalence (``2x + 6`` for ``2(x + 3)``), equations
  (``x = 3``), a choice's text, letter or number, a text answer, and a few encodings (spelled letters, base64).
  A value that already appears in the problem or in the learner's own attempts is no leak by itself ("Subtract 5
  from both sides"), but stating it as the result is ("you get 5", "the answer is 5", "... = 5"). Leaks are fine
  when the class allows the bottom-out and the learner reached it; the step's answer is no secret once the
  learner has it right.
- ``arithmetic``: every claim ``a op b = c`` (chains, unicode operators, LaTeX, fractions, percent, degrees,
  number words) must be exactly true; a decimal may round a value that has more places (``1/3 = 0.33``, not
  ``1/3 = 0.3``). With letters: at the solution of the problem's one-letter equations ("Solve 3x + 5 = 17":
  ``3x = 12`` holds at x = 4), else as an identity when the two sides differ by a single term (``2x + 3x = 6x``,
  ``2(x + 3) = 2x + 3``); other equations (``5x + 17 = 2x + 11``) are something to solve, not claims. Not
  judged: questions about a claim ("Is 20 - 5 = 11?"), the learner's work quoted ("you wrote ..."), values to
  try ("substitute x = 3"), unit conversions (``1 km = 1000 m``), functions the guard does not know (``f(0)``).
- ``endorsement``: a wrong answer must not be called right.
- ``quality``: not empty, not too long, not a copy of the problem, no script line or replayed prompt ("Pupil:",
  "Teacher:", "Current step:", talk about "the pupil", a learner's message quoted back), and a real move: a
  question about the step or an instruction to act on it.
- Besides: "the answer is ...", "Answer: ..." and "... that's your answer" are leaks whatever follows.

Pure Python + sympy, no Django. Expressions are read with tutor.grading's parser, which never evaluates text.
What the guard cannot catch (reasoning that needs understanding, such as "it is the number between 11 and 13")
is listed with the adversarial cases in tests/unit/test_hint_guard.py.
"""

import base64
import binascii
import dataclasses
import functools
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import sympy

# The grader's own readers of numbers and expressions, so that the guard judges them exactly as grading does.
from tutor.grading import (
    AnswerFormatError,
    equivalent,
    grade,
    parse_expression,
    spec_number,
    validate_spec,
)

MAX_LENGTH = 600  # characters a hint may have
MAX_TEXT = 4000  # characters analysed for leaks and arithmetic (longer messages fail on length anyway)
MAX_CANDIDATES = 80  # expression candidates graded per message
COPY_JACCARD = 0.8


@dataclass(frozen=True)
class GuardContext:
    step_answer: dict  # the current step's answer spec
    final_answer: dict | None  # the problem's final step's spec (None if same as step)
    problem_text: str  # problem body + step prompt as the learner sees them
    learner_answers: list[str]  # the learner's answers on this step so far (raw text)
    learner_correct: bool | None  # grading of the learner's latest answer (None: no answer yet)
    bottom_out_allowed: bool = False  # the class allows bottom-out AND the learner reached it: then leaks are fine
    learner_messages: tuple[str, ...] = ()  # what the learner wrote in the dialogue (a tutor never speaks it back)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reasons: tuple[str, ...]  # "leak: ...", "arithmetic: ...", "endorsement: ...", "quality: ..." (or "error: ...")


# ---------------------------------------------------------------------------------------------------------
# Public API


def check_message(text: str, context: GuardContext) -> Verdict:
    """Run every rule on ``text`` and collect the reasons it may not be shown. A rule that fails with an
    unexpected error refuses the message ("error: ..."): the guard fails closed."""
    reasons: list[str] = []
    for rule in ("leak", "arithmetic", "endorsement", "quality"):
        try:
            reasons += globals()[f"_{rule}_reasons"](text, context)
        except Exception as exc:  # a bug in the guard must not let a message through
            reasons.append(f"error: the {rule} rule failed ({type(exc).__name__})")
    return Verdict(not reasons, tuple(dict.fromkeys(reasons)))


def leak_values(text: str, context: GuardContext) -> list[str]:
    """The spans of ``text`` (as normalised: LaTeX and unicode operators rewritten) that give an answer away."""
    return list(dict.fromkeys(span for span, _ in _leaks(text, context)))


def mentions_answer(text: str, answer_spec: dict) -> bool:
    """Whether any form of the answer that the grader would accept appears in ``text``: the benchmark's leak
    measure. Unlike the guard it ignores the problem and the learner (no "already in the problem" exemption) and
    needs no claim, except for tokens that are ordinary English until stated as an answer: the word "one", a
    bare "half", a choice's letter or number, short text answers such as "yes", digits spaced out ("1 2")."""
    message = _Message(text)
    return any(not c.weak or c.stated or _claimed(message, c) for c in _matching(message, answer_spec))


def mention_reasons(text: str, context: GuardContext) -> list[str]:
    """The strictest leak rule, for what the tutor shows: any form of a secret answer at all (by
    ``mentions_answer``), even a number the problem or the learner already wrote ("you divided 1 by 2" when the
    answer is 2). check_message leaves such quotes to the judgement of the leak rule; the dialogue does not show
    them (a quote is never needed for a hint, and a weak model's quotes slide into stating)."""
    if context.bottom_out_allowed:
        return []
    specs = [] if context.learner_correct is True else [("the step's answer", context.step_answer)]
    if context.final_answer is not None and context.final_answer != context.step_answer:
        specs.append(("the final answer", context.final_answer))
    return [f"leak: mentions {label}" for label, spec in specs if mentions_answer(text, spec)]


def sentences(chunks: Iterable[str]) -> Iterator[str]:
    """Buffer a stream of text chunks (model tokens) into whole sentences, stripped: a sentence ends at a
    newline, or at ``.``, ``?`` or ``!`` (with any closing quotes or brackets) followed by white space or the end
    of the stream. A point inside a number (``3.5``), in an abbreviation (``e.g.``) or after a list number
    (``1.``) ends nothing; ``x = 2.5.`` ends after the second point."""
    buffer = ""
    for chunk in chunks:
        buffer += chunk
        while (cut := _sentence_end(buffer, final=False)) is not None:
            sentence, buffer = buffer[:cut].strip(), buffer[cut:]
            if sentence:
                yield sentence
    while (cut := _sentence_end(buffer, final=True)) is not None:
        sentence, buffer = buffer[:cut].strip(), buffer[cut:]
        if sentence:
            yield sentence
    if buffer.strip():
        yield buffer.strip()


# ---------------------------------------------------------------------------------------------------------
# Sentences

_ABBREVIATIONS = {"e.g", "i.e", "eg", "ie", "vs", "mr", "mrs", "ms", "dr", "prof", "approx", "cf", "fig", "eq"}
_CLOSERS = "\"')]}*_"


def _sentence_end(buffer: str, final: bool) -> int | None:
    """Where the first complete sentence in ``buffer`` ends, or None while more text is needed."""
    for i, char in enumerate(buffer):
        if char == "\n":
            return i + 1
        if char not in ".?!":
            continue
        j = i + 1
        while j < len(buffer) and buffer[j] in ".?!" + _CLOSERS:
            j += 1
        if j == len(buffer):
            return j if final else None  # the next chunk may continue a number: 3.|5
        if not buffer[j].isspace():
            continue  # 3.5, e.g, x!=
        if char == ".":
            word = re.search(r"[\w.]*$", buffer[:i]).group().lower()
            if word in _ABBREVIATIONS:
                continue
            start = buffer.rfind("\n", 0, i) + 1
            if re.fullmatch(r"\s*(?:\d{1,2}|[A-Za-z])", buffer[start:i]):
                continue  # a list item: "1. Subtract ...", "a. ..."
        return j
    return None


# ---------------------------------------------------------------------------------------------------------
# Normalising a message: unicode, LaTeX and markdown rewritten into plain text with ASCII operators

_CHAR_MAP = {
    **dict.fromkeys("\u2212\u2013\u2010\u2011\u2012\ufe63\uff0d", "-"),  # minus signs and dashes
    **dict.fromkeys("\u00d7\u00b7\u22c5\u2219\u2217\u2715\u2716", "*"),  # times signs and dots
    **dict.fromkeys("\u00f7\u2215\u2044", "/"),
    **dict.fromkeys("\u2018\u2019\u02bc", "'"),
    **dict.fromkeys("\u201c\u201d\u00ab\u00bb", '"'),
    **dict.fromkeys("\u00a0\u2009\u202f", " "),
    "\u2236": ":",
    "\u221a": "sqrt",
    "\u03c0": "pi",
}
_CHAR_MAP.update(
    {sup: f"^{digit}" for digit, sup in enumerate("\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")}
)
_CHAR_MAP.update(
    {
        vulgar: " " + unicodedata.normalize("NFKC", vulgar).replace("\u2044", "/") + " "
        for vulgar in "\u00bd\u2153\u2154\u00bc\u00be\u2155\u2156\u2157\u2158\u2159\u215a\u215b\u215c\u215d\u215e"
    }
)
_INVISIBLE = (
    "\u200b\u200c\u200d\u2060\ufeff\u00ad\ufe0e\ufe0f\u20e3"  # zero-width, soft hyphen, keycaps: 1\u20e32\u20e3
)
_TRANSLATE = str.maketrans({**{c: None for c in _INVISIBLE}, **_CHAR_MAP})

_TEX_GROUPS = [
    (re.compile(r"\\[dt]?frac\s*\{\s*(-?[\w.]+)\s*\}\s*\{\s*([\w.]+)\s*\}"), r" \1/\2"),
    (re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}"), r"((\1)/(\2))"),
    (re.compile(r"\\sqrt\s*\{([^{}]*)\}"), r"sqrt(\1)"),
    (
        re.compile(
            r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mathit|boxed|fbox|mbox|operatorname|emph"
            r"|underline|overline|bf|it)\s*\{([^{}]*)\}"
        ),
        r"\1",
    ),
]
_TEX_WORDS = [
    (r"\\(?:times|cdot|ast)(?![A-Za-z])", "*"),
    (r"\\div(?![A-Za-z])", "/"),
    (r"\\%", "%"),
    (r"\\\$", "$"),
    (r"\\pi(?![A-Za-z])", "pi"),
    (r"\\sqrt(?![A-Za-z])", "sqrt"),
    (r"\\(?:approx|sim)(?![A-Za-z])", "\u2248"),
    (r"\\(?:neq|ne)(?![A-Za-z])", "\u2260"),
    (r"\\(?:leq|le)(?![A-Za-z])", "\u2264"),
    (r"\\(?:geq|ge)(?![A-Za-z])", "\u2265"),
    (r"\\[{]", "("),
    (r"\\[}]", ")"),
    (r"\\(?:left|right|displaystyle|quad|qquad)(?![A-Za-z])|\\[,;:! ]|\\[()\[\]]", " "),
    (r"\^\s*\(?\s*\\circ\s*\)?|\\degree(?![A-Za-z])", "\u00b0"),  # 60^\circ, 60\degree
    (r"\\(?:ldots|cdots|dots)(?![A-Za-z])", "..."),
    (r"\\([A-Za-z]+)", r" \1"),  # \ln, \theta, \int, \log_2: the name, as a word
]
_TEX_WORDS = [(re.compile(pattern), replacement) for pattern, replacement in _TEX_WORDS]


_BARE_GROUP = re.compile(r"(?<![A-Za-z}])\{([^{}]*)\}")  # a brace group that is no command's argument


@functools.lru_cache(maxsize=512)
def _normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text.translate(_TRANSLATE)).translate(_TRANSLATE)
    text = re.sub(r"(?<=[A-Za-z])_\{([A-Za-z0-9]+)\}", r"_\1", text)  # subscripts: x_{1}
    for _ in range(6):  # innermost groups first: \frac{\frac{1}{2}}{3}, \frac{{(-2)}^3}{3}
        before = text
        text = _BARE_GROUP.sub(r"(\1)", text)
        for pattern, replacement in _TEX_GROUPS:
            text = pattern.sub(replacement, text)
        if text == before:
            break
    for pattern, replacement in _TEX_WORDS:
        text = pattern.sub(replacement, text)
    text = re.sub(r"(?<=[A-Za-z])_\{?([A-Za-z0-9]+)\}?", r"_\1", text)  # subscripts: y_2, x_{1}
    text = text.replace("{", "(").replace("}", ")").replace("$", "")
    text = re.sub(r"`+", " ", text)
    # Markdown emphasis (**12**, __x__), but not a power 2**3.
    text = re.sub(r"(?<![\w)])(\*\*|__|\*|_)(?=\S)(.+?)(?<=\S)\1(?![\w(])", r"\2", text)
    text = text.replace("**", "^")
    text = re.sub(r"\(\s*(-?\d+)\s*\)\s*/\s*\(\s*(\d+)\s*\)", r" \1/\2", text)  # (-3)/(4): a fraction, -3/4
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    return text.strip()


# ---------------------------------------------------------------------------------------------------------
# Number words

_UNITS_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen".split()
    )
}
_TENS_WORDS = {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)}
_SCALE_WORDS = {"hundred": 100, "thousand": 1000, "million": 10**6}
_DENOMINATORS = {
    word: n
    for words, n in (
        ("half halves", 2),
        ("third thirds", 3),
        ("quarter quarters", 4),
        ("fourth fourths", 4),
        ("fifth fifths", 5),
        ("sixth sixths", 6),
        ("seventh sevenths", 7),
        ("eighth eighths", 8),
        ("ninth ninths", 9),
        ("tenth tenths", 10),
        ("hundredth hundredths", 100),
        ("thousandth thousandths", 1000),
    )
    for word in words.split()
}
_NUMBER_STARTS = set(_UNITS_WORDS) | set(_TENS_WORDS) | {"a", "an", "half", "negative", "baker's", "dozen"}


_VALUE_WORDS = frozenset(
    "of percent per dollars dollar cents cent euros pounds degrees units and or is equals times plus "
    "minus over divided multiplied squared cubed".split()
)


def _words_value(words: list[str]) -> tuple[Fraction, int, bool] | None:
    """Read a number written in words at the start of ``words`` (lowercase): (value, words used, weak).
    "twenty-five", "one hundred and five", "three point five", "two thirds", "a quarter", "one and a half",
    "a dozen", "half a dozen", "negative seven". Weak: the bare word "one" or "half" (ordinary English)."""
    i, sign = 0, 1
    if words[:1] == ["negative"]:
        i, sign = 1, -1
    rest = words[i:]
    if rest[:3] == ["half", "a", "dozen"]:
        return Fraction(6 * sign), i + 3, False
    if rest[:2] == ["baker's", "dozen"]:
        return Fraction(13 * sign), i + 2, False
    if rest[:1] == ["dozen"]:
        return None
    if rest[:1] in (["a"], ["an"]):
        following = rest[1:2]
        if not following:
            return None
        if following[0] in _DENOMINATORS and not following[0].endswith("s"):
            return Fraction(sign, _DENOMINATORS[following[0]]), i + 2, False
        if following == ["dozen"]:
            return Fraction(12 * sign), i + 2, False
        if following[0] not in _SCALE_WORDS:
            return None
        rest = ["one", *rest[1:]]
    if rest[:1] == ["half"]:
        return Fraction(sign, 2), i + 1, sign == 1
    total = current = 0
    last = ""
    j = 0
    while j < len(rest):
        word = rest[j]
        if word in _UNITS_WORDS or word in _TENS_WORDS:
            kind = "tens" if word in _TENS_WORDS else "unit"
            if last == "unit" or (last == "tens" and (kind == "tens" or _UNITS_WORDS[word] >= 10)):
                break
            current += _UNITS_WORDS.get(word, _TENS_WORDS.get(word, 0))
            last = kind
        elif word in _SCALE_WORDS and last:
            if word == "hundred":
                current = (current or 1) * 100
            else:
                total += (current or 1) * _SCALE_WORDS[word]
                current = 0
            last = "scale"
        elif (
            word == "and"
            and last == "scale"
            and j + 1 < len(rest)
            and (rest[j + 1] in _UNITS_WORDS or rest[j + 1] in _TENS_WORDS)
        ):
            pass
        else:
            break
        j += 1
    if not last:
        return None
    value = Fraction(total + current)
    if rest[j : j + 1] == ["point"] and j + 1 < len(rest) and _UNITS_WORDS.get(rest[j + 1], 99) < 10:
        digits = ""
        j += 1
        while j < len(rest) and _UNITS_WORDS.get(rest[j], 99) < 10:
            digits += str(_UNITS_WORDS[rest[j]])
            j += 1
        value += Fraction(int(digits), 10 ** len(digits))
    elif rest[j : j + 3] == ["and", "a", "half"]:
        value += Fraction(1, 2)
        j += 3
    elif j < len(rest) and rest[j] in _DENOMINATORS and value.denominator == 1 and value > 0:
        value /= _DENOMINATORS[rest[j]]
        j += 1
    elif rest[j : j + 1] == ["dozen"]:
        value *= 12
        j += 1
    weak = sign == 1 and rest[:j] == ["one"]
    return value * sign, i + j, weak


# ---------------------------------------------------------------------------------------------------------
# Tokens

# E-notation up to 1e999 only: "25e4568262" (a hash in a link) is no number, and 10**4568262 would take minutes.
_TOKEN_RE = re.compile(
    r"(?P<num>(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:[eE][-+]?\d{1,3}(?![\dA-Za-z]))?|\.\d+)"
    r"|(?P<word>[A-Za-z]+(?:_[A-Za-z0-9]+|'[A-Za-z]+)?)"
    r"|(?P<op>\*\*|[-+*/^()=%])"
    r"|(?P<space>[ \t]+)"
    r"|(?P<other>[\s\S])"
)
_UNIT_WORDS = frozenset(
    "mm cm m km in ft yd mi g kg mg lb lbs oz l ml cl s sec secs min mins h hr hrs k am pm c f p kph mph "
    "usd eur gbp".split()
)
_ORDINAL_SUFFIXES = {"st", "nd", "rd", "th"}
_FUNCTIONS = {"sqrt", "sin", "cos", "tan", "log", "ln", "exp", "abs"}
_CONSTANTS = {"pi"}


@dataclass
class _Token:
    kind: str  # num, word, op, space, other
    text: str
    start: int
    end: int
    value: Fraction | None = None  # num
    math: str = ""  # how the expression parser reads a num
    places: int = 0  # decimal places as written
    weak: bool = False  # number words that are ordinary English ("one", "half")
    words: bool = False  # written in words


def _tokenize(text: str) -> list[_Token]:
    tokens = []
    for m in _TOKEN_RE.finditer(text):
        kind = m.lastgroup
        token = _Token(kind, m.group(), m.start(), m.end())
        if kind == "num":
            plain = token.text.replace(",", "")
            token.value = Fraction(plain)
            token.math = plain
            mantissa = re.split(r"[eE]", plain)[0]
            token.places = len(mantissa.split(".")[1]) if "." in mantissa else 0
        tokens.append(token)
    return _merge_number_words(tokens, text)


def _merge_number_words(tokens: list[_Token], text: str) -> list[_Token]:
    """Replace number phrases in words ("twenty-five", "two thirds") by one num token each."""
    out, i = [], 0
    while i < len(tokens):
        token = tokens[i]
        if token.kind == "word" and token.text.lower() in _NUMBER_STARTS:
            words, indices, j = [token.text.lower()], [i], i + 1
            while j + 1 < len(tokens) and len(words) < 12:
                gap, nxt = tokens[j], tokens[j + 1]
                joined = gap.kind == "space" or (gap.kind == "op" and gap.text == "-")
                if not (joined and nxt.kind == "word"):
                    break
                words.append(nxt.text.lower())
                indices.append(j + 1)
                j += 2
            parsed = _words_value(words)
            if parsed is not None:
                value, used, weak = parsed
                last = tokens[indices[used - 1]]
                math = str(value.numerator) if value.denominator == 1 else f"({value.numerator}/{value.denominator})"
                after = _next(tokens, indices[used - 1])
                if (
                    after is not None
                    and tokens[after].kind == "word"
                    and tokens[after].text.lower() not in _VALUE_WORDS
                ):
                    weak = True  # "two numbers", "three terms": a count in a sentence, unless stated as the answer
                out.append(
                    _Token("num", text[token.start : last.end], token.start, last.end, value, math, 0, weak, True)
                )
                i = indices[used - 1] + 1
                continue
        out.append(token)
        i += 1
    return out


def _next(tokens: list[_Token], i: int, step: int = 1) -> int | None:
    """Index of the nearest token that is not a space, from i + step in the direction of step."""
    i += step
    while 0 <= i < len(tokens):
        if tokens[i].kind != "space":
            return i
        i += step
    return None


def _glued(a: _Token | None, b: _Token | None) -> bool:
    return a is not None and b is not None and a.end == b.start


# ---------------------------------------------------------------------------------------------------------
# A message, read once: normalised text, tokens, numbers and math segments


@dataclass(frozen=True)
class _Cand:
    """Something in a message that might be an answer."""

    span: str  # as it appears in the normalised text
    start: int
    end: int
    kind: str = "number"  # number, expr, text, choice-ref, choice-text
    value: Fraction | None = None  # number
    math: str = ""  # expr: parseable text
    equation: bool = False  # expr: contains "="
    percent: bool = False  # number: written with % (value is the number before the %)
    rate: bool = False  # number: "10% of ...", a rate rather than an amount
    places: int = 0  # number: decimal places as written
    weak: bool = False  # only a leak when stated as the answer
    stated: bool = False  # a leak wherever it is (an encoding, or an expression after "the answer is")


@dataclass(frozen=True)
class _Item:
    """One piece of a math segment."""

    kind: str  # num, var, func, const, op
    math: str
    start: int
    end: int
    places: int = 0
    unit: str = ""  # num: the unit written after it (5 cm), left out of the maths


class _Message:
    def __init__(self, text: str, depth: int = 0):
        self.text = _normalize(text[:MAX_TEXT])
        self.lower = self.text.lower()
        self.tokens = _tokenize(self.text)
        self.numbers = _numbers(self.tokens, self.text)
        self.segments = _segments(self.tokens)
        self.decoded = _decoded(self.text) if depth == 0 else []

    def expressions(self) -> list[_Cand]:
        """Expressions and equations in the message, with a few trimmed variants of each side (so that the
        "a" of "a 2x + 6" or a stray trailing letter does not hide "2x + 6")."""
        seen, out = set(), []
        for segment in self.segments:
            sides = _split_sides(segment)
            variants = [_side_variants(side) for side in sides]
            for side_variants in variants:
                for items in side_variants:
                    self._add(items, False, seen, out)
            for left, right in zip(variants, variants[1:], strict=False):
                if left and right:
                    for lhs in left[:2]:
                        for rhs in (right[0], right[-1]):
                            self._add([*lhs, _Item("op", "=", lhs[-1].end, rhs[0].start), *rhs], True, seen, out)
        return out[:MAX_CANDIDATES]

    def _add(self, items: list[_Item], equation: bool, seen: set, out: list) -> None:
        math = " ".join(item.math for item in items)
        if math in seen or not items:
            return
        seen.add(math)
        start, end = items[0].start, items[-1].end
        out.append(_Cand(self.text[start:end], start, end, "expr", math=math, equation=equation))


def _numbers(tokens: list[_Token], text: str, everything: bool = False) -> list[_Cand]:
    """The numbers a message states, with fractions (in lowest terms: "7/2"; "20/4" is a division to do),
    mixed numbers, percent, signs and number words. Left out unless ``everything``: exponents (x^2), digits
    glued to letters (x2, 3x, 5th) other than units (5cm)."""
    out: list[_Cand] = []
    used: set[int] = set()
    for i, token in enumerate(tokens):
        if token.kind != "num" or i in used:
            continue
        prev, nxt = (tokens[i - 1] if i else None), (tokens[i + 1] if i + 1 < len(tokens) else None)
        if not token.words and not everything:
            if _glued(prev, token) and (prev.kind == "word" or prev.text == "^"):
                continue
            if _glued(token, nxt) and nxt.kind == "word" and nxt.text.lower() not in _UNIT_WORDS:
                continue
        sign_match = None if token.words else _SIGN_RE.search(text, 0, token.start)
        sign = -1 if sign_match else 1
        start = (
            (sign_match.start("sign") if sign_match.group("sign") else sign_match.start("s2"))
            if sign_match
            else token.start
        )
        value, end, places = token.value * sign, token.end, token.places
        slash = _next(tokens, i)
        denominator = _next(tokens, slash) if slash is not None and tokens[slash].text == "/" else None
        if (
            denominator is not None
            and tokens[denominator].kind == "num"
            and not token.words
            and not tokens[denominator].words
            and token.value.denominator == 1
            and tokens[denominator].value.denominator == 1
            and tokens[denominator].places == 0
        ):
            a, b = int(token.value), int(tokens[denominator].value)
            after = tokens[denominator + 1] if denominator + 1 < len(tokens) else None
            if b > 1 and math.gcd(a, b) == 1 and not (_glued(tokens[denominator], after) and after.text in "^/"):
                fraction = Fraction(a, b) * sign
                out.append(
                    _Cand(
                        text[start : tokens[denominator].end],
                        start,
                        tokens[denominator].end,
                        value=fraction,
                        percent=_percent_after(tokens, denominator),
                    )
                )
                used.add(denominator)
                # A mixed number: "3 1/2".
                if (
                    out[:-1]
                    and out[-2].value is not None
                    and out[-2].value.denominator == 1
                    and 0 < a < b
                    and text[out[-2].end : start] == " "
                    and out[-2].value >= 0
                    and sign > 0
                ):
                    whole = out[-2]
                    out.append(
                        _Cand(
                            text[whole.start : tokens[denominator].end],
                            whole.start,
                            tokens[denominator].end,
                            value=whole.value + fraction,
                        )
                    )
                continue
        percent = _percent_after(tokens, i)
        if percent and (j := _next(tokens, i)) is not None and tokens[j].text == "%":
            end = tokens[j].end
        after = _next(tokens, _next(tokens, i) if percent else i)
        rate = percent and after is not None and tokens[after].text.lower() == "of"
        out.append(
            _Cand(text[start:end], start, end, value=value, percent=percent, rate=rate, places=places, weak=token.weak)
        )
    return out


_SIGN_RE = re.compile(
    r"(?:(?:^|[\s(\[=,:;<>])(?P<sign>-)|(?:^|[(\[=,:;<>]|\b(?:is|be|equals|get|gives))\s*(?P<s2>-)\s+)$"
)


def _percent_after(tokens: list[_Token], i: int) -> bool:
    j = _next(tokens, i)
    if j is None:
        return False
    word = tokens[j].text.lower()
    return (
        tokens[j].text == "%"
        or word == "percent"
        or (word == "per" and ((k := _next(tokens, j)) is not None and tokens[k].text.lower() == "cent"))
    )


_WORD_OPS = dict(times="*", plus="+", minus="-", equals="=", squared="^2", cubed="^3", multiplied="*", divided="/")
_EQUALS_WORDS = {"is", "makes", "gives", "equal"}


def _segments(tokens: list[_Token]) -> list[list[_Item]]:
    """Runs of the message that read as maths ("3 × 4 = 12", "2x + 6", "50% of 20 = 10", "three plus four
    equals seven"), as items the expression parser can read. English words end a run, except operator words,
    units after a number and single letters next to an operator or a number (so "a" in "a 5" is an article)."""
    segments: list[list[_Item]] = []
    run: list[_Item] = []

    def flush():
        # A run that starts or ends with an operator is part of a sentence ("what number times 2 equals 12?"):
        # the side next to the missing operand is incomplete, so it and its "=" go.
        if run and run[0].kind == "op" and run[0].math not in "-(":
            cut = next((k for k, item in enumerate(run) if item.math == "="), len(run) - 1)
            del run[: cut + 1]
        if run and (run[-1].kind == "func" or (run[-1].kind == "op" and run[-1].math != ")")):
            cut = next((k for k in range(len(run) - 1, -1, -1) if run[k].math == "="), 0)
            del run[cut:]
        if any(item.kind != "op" for item in run):
            segments.append(list(run))
        run.clear()

    i = 0
    while i < len(tokens):
        token = tokens[i]
        kind, word = token.kind, token.text.lower()
        prev_i, next_i = _next(tokens, i, -1), _next(tokens, i)
        prev = tokens[prev_i] if prev_i is not None else None
        nxt = tokens[next_i] if next_i is not None else None
        last = run[-1] if run else None
        if kind == "space":
            pass
        elif kind == "num":
            if prev is not None and _glued(prev, token) and prev.kind == "word":
                flush()  # IE1, F2: part of a name
                i += 1
                continue
            if nxt is not None and (nxt.text == "\u00b0" or nxt.text.lower() in ("degree", "degrees", "deg")):
                run.append(_Item("num", f"({token.math}*pi/180)", token.start, nxt.end))  # 60° in radians
                i = next_i + 1
                continue
            if _percent_after(tokens, i):
                end_i = next_i if nxt.text == "%" or nxt.text.lower() == "percent" else _next(tokens, next_i)
                run.append(_Item("num", f"({token.math}/100)", token.start, tokens[end_i].end))
                of = _next(tokens, end_i)
                if of is not None and tokens[of].text.lower() == "of":  # 50% of 20
                    run.append(_Item("op", "*", tokens[of].start, tokens[of].end))
                    end_i = of
                i = end_i + 1
                continue
            run.append(_Item("num", token.math, token.start, token.end, token.places))
        elif kind == "op":
            if token.text == "%" or (
                token.text == "-"
                and (prev is None or prev.kind == "other" and prev.text == "\n")
                and nxt is not None
                and nxt.kind == "word"
                and not _glued(token, nxt)
            ):
                flush()  # a stray %, or a list bullet ("- l = 2 is 'd'")
            else:
                run.append(_Item("op", "^" if token.text == "**" else token.text, token.start, token.end))
        elif kind == "word" and (close := _call_end(tokens, i)) is not None:
            flush()  # f(0), arctan(-0.7): a function the guard does not evaluate
            i = close + 1
            continue
        elif kind == "word":
            if word in _WORD_OPS:
                if word in ("multiplied", "divided"):
                    if nxt is None or nxt.text.lower() != "by":
                        flush()
                        i += 1
                        continue
                    i = next_i
                run.append(_Item("op", _WORD_OPS[word], token.start, token.end))
            elif word in _EQUALS_WORDS and last is not None and _ends_operand(last):
                # "3 times 4 is 12": "is" reads as "=" after a calculation, but not in "half of 10 is 5".
                target_i = next_i
                if word == "is" and nxt is not None and nxt.text.lower() == "equal":
                    target_i = _next(tokens, next_i)
                    word = "equal"
                if word == "equal":
                    if target_i is None or tokens[target_i].text.lower() != "to":
                        flush()
                        i += 1
                        continue
                    target_i = _next(tokens, target_i)
                following = tokens[target_i] if target_i is not None else None
                calculation = any(
                    item.kind == "op" and item.math in "+-*^" and k > 0 and _ends_operand(run[k - 1])
                    for k, item in enumerate(run)
                )
                if calculation and following is not None and (following.kind == "num" or following.text == "("):
                    run.append(_Item("op", "=", token.start, token.end))
                    i = target_i
                    continue
                flush()
            elif word in _FUNCTIONS and nxt is not None and nxt.text == "(":
                run.append(_Item("func", word, token.start, token.end))
            elif word in _CONSTANTS:
                run.append(_Item("const", word, token.start, token.end))
            elif (
                word in _AFTER_NUMBER_UNITS
                and last is not None
                and last.kind == "num"
                and (len(word) > 1 or not _glued(prev, token))
            ):
                run[-1] = dataclasses.replace(last, unit=word, end=token.end)  # 5 cm + 3 cm = 8 cm
            elif _math_letters(token, tokens, i, prev, nxt) or (
                len(word) == 1 and word not in "ai" and last is not None and last.kind == "var" and last.end == prev.end
            ):  # ... or a letter after a letter of the run: "5 × 2 x x"
                run.append(_Item("var", token.text, token.start, token.end))
            else:
                flush()
        else:
            flush()
        i += 1
    flush()
    return segments


_AFTER_NUMBER_UNITS = (_UNIT_WORDS - {"in", "am", "s", "p", "c", "f", "k"}) | set(
    "dollars dollar cents cent euros euro pounds degrees metres meters units".split()
)


_OTHER_FUNCTIONS = set("arcsin arccos arctan sec csc cot sinh cosh tanh max min gcd lcm gcf lcd".split())


def _call_end(tokens: list[_Token], i: int) -> int | None:
    """Where the call ends when tokens[i] is a function applied to a bracket: f(0), g(x), P(A), arctan(0.5);
    None for a known function (sqrt(2)) or a product (x(x + 1), P(1 + r))."""
    word = tokens[i].text
    start = i + 1
    if "_" in word or word.lower() in _OTHER_FUNCTIONS:  # log_8 (2): a space is fine
        start = _next(tokens, i)
    if start is None or start >= len(tokens) or tokens[start].text != "(" or word.lower() in _FUNCTIONS:
        return None
    depth = 0
    for j in range(start, len(tokens)):
        depth += {"(": 1, ")": -1}.get(tokens[j].text, 0)
        if depth == 0:
            inside = [t for t in tokens[start + 1 : j] if t.kind != "space"]
            if len(word) > 1 or word in "fgh" or (word.isupper() and len(inside) == 1):
                return j
            return None
    return None


def _math_letters(token: _Token, tokens: list[_Token], i: int, prev: _Token | None, nxt: _Token | None) -> bool:
    """A word that is letters of an expression: a single letter (not the pronoun I) next to an operator or glued
    to a number or bracket ("x = 3", "2x", "(x"), or a short run of letters glued to a number ("2xy")."""
    word = token.text
    if "'" in word or "_" in word:
        return False
    before = tokens[i - 1] if i else None
    after = tokens[i + 1] if i + 1 < len(tokens) else None
    glued = (_glued(before, token) and before.kind in ("num", "op")) or (
        _glued(token, after) and after.kind == "op" and after.text not in "%"
    )
    if len(word) == 1:
        if word == "I":
            return False
        if glued or (prev is not None and prev.kind == "num" and word not in "aA"):
            return True  # x = 3, 2x, 2/3 n
        return (prev is not None and prev.kind == "op" and prev.text not in "%") or (
            nxt is not None
            and nxt.kind == "op"
            and nxt.text not in "%"
            and (nxt.text != "-" or prev is None or prev.kind != "word")
        )
    return (
        len(word) <= 3
        and glued
        and before is not None
        and before.kind == "num"
        and word.lower() not in _UNIT_WORDS | _ORDINAL_SUFFIXES
    )


def _split_sides(segment: list[_Item]) -> list[list[_Item]]:
    sides, current = [], []
    for item in segment:
        if item.kind == "op" and item.math == "=":
            sides.append(current)
            current = []
        else:
            current.append(item)
    return [*sides, current]


def _starts_operand(item: _Item) -> bool:
    return item.kind in ("num", "var", "const", "func") or item.math in ("(", "-")


def _ends_operand(item: _Item) -> bool:
    return item.kind in ("num", "var", "const") or item.math == ")" or item.math.startswith("^")


def _side_variants(side: list[_Item]) -> list[list[_Item]]:
    if not side:
        return []
    variants = [side]
    for k in (1, 2):
        if k < len(side) and _starts_operand(side[k]):
            variants.append(side[k:])
    for k in (1, 2):
        if k < len(side) and _ends_operand(side[-k - 1]):
            variants.append(side[:-k])
    return variants


def _side_text(text: str, side: list[_Item]) -> str:
    return text[side[0].start : side[-1].end]


# ---------------------------------------------------------------------------------------------------------
# Encodings: spelled-out letters, spaced digits, base64

_SPELLED_RE = re.compile(r"(?<![A-Za-z])[A-Za-z](?:(?:\s*[-._*,]\s*|\s)[A-Za-z](?![A-Za-z'])){2,}")
_SPACED_DIGITS_RE = re.compile(r"(?<![\d.,/])\d(?P<sep>[ -])\d(?:(?P=sep)\d)*(?![\d.,/])")
_BASE64_RE = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{2,}={0,2}(?![A-Za-z0-9+/=])")


def _decoded(text: str) -> list[tuple[str, int, int, "_Message"]]:
    """Hidden forms of text: ("t-w-e-l-v-e" -> "twelve", "MTI=" -> "12"), each as (span, start, end, message)."""
    out = []
    for m in _SPELLED_RE.finditer(text):
        joined = "".join(ch for ch in m.group() if ch.isalpha()).lower()
        out.append((m.group(), m.start(), m.end(), _Message(joined, depth=1)))
    for m in _BASE64_RE.finditer(text):
        token = m.group()
        if (
            len(token) < 4
            or len(token) % 4
            or not (token.endswith("=") or re.search(r"\d", token) or re.search(r"[a-z][A-Z]", token))
        ):
            continue
        try:
            plain = base64.b64decode(token, validate=True).decode("ascii")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if plain and plain.isprintable() and re.search(r"[A-Za-z0-9]", plain):
            out.append((token, m.start(), m.end(), _Message(plain, depth=1)))
    return out


# ---------------------------------------------------------------------------------------------------------
# Claims: is a value stated as the result ("you get 5", "the answer is 5", "= 5", "5 is correct")?

_FILLER = (
    r"(?:\s+(?:just|simply|exactly|actually|really|then|therefore|thus|clearly|definitely|probably|obviously"
    r"|indeed|only|about|approximately|roughly|around|precisely|the|a|an|number|option|choice|letter))*"
)
_BEFORE_CUE = re.compile(
    r"(?:"
    r"\banswers?\b(?:\s+[\w']+){0,3}?\s*(?:is|are|was|would\s+be|will\s+be|should\s+be|must\s+be|=|:|equals|of)?"
    r"|\b(?:result|solution|final\s+value)\s*(?:is|was|would\s+be|will\s+be|should\s+be|must\s+be|=|:|equals)"
    r"|(?<![<>!=])=(?!=)"
    r"|\b(?:equals?|equal\s+to|equalling)"
    r"|\b(?:get|gets|got|getting|give|gives|gave|giving|make|makes|made|yields?|leaves?|left\s+with|becomes?"
    r"|comes?\s+(?:out\s+)?to|works?\s+out\s+(?:to|as)|results?\s+in|end\s+up\s+with|arrive\s+at)(?:\s+(?:you|us))?"
    r"|(?:\b(?!(?:what|which|how|who|whom|where|when|why|whether|if|much|many)\b)\w+|\)|,\s*(?:which|that))\s+"
    r"(?:is|are|was|will\s+be|would\s+be|must\s+be|should\s+be|has\s+to\s+be|becomes)"
    r"|\b(?:it|that|this|answer|x|there|result|solution|what)'s"
    r"|\b(?:is|could|would|might|can|will)\s+(?:it|x|[a-z]|the\s+answer)\s+(?:be\s+)?"
    r"|\b(?:must|should|has\s+to|have\s+to|will|would)\s+be"
    r"|\b(?:try|enter|type|put(?:\s+(?:in|down))?|submit|write\s+down|choose|pick|select|go\s+(?:with|for)"
    r"|plug\s+in|guess)"
    r")" + _FILLER + r"\s*[\"'(*]*$"
)
_STRONG_CUE = re.compile(
    r"\b(?:answer|result|solution)s?\b(?:\s+[\w']+){0,3}?\s*(?:is|was|would\s+be|will\s+be|should\s+be|must\s+be"
    r"|=|:|equals)" + _FILLER + r"\s*[\"'(*]*"
)
_AFTER_CUE = re.compile(
    r"\s*(?:[a-z%]+\s+)?(?:(?:is|was|'s|would\s+be|will\s+be|should\s+be|must\s+be)\s+"
    r"(?:indeed\s+|definitely\s+|also\s+|actually\s+|exactly\s+)?(?:the\s+)?"
    r"(?:correct|right|answer|solution|result|final|it\b|what\s+you)"
    r"|works\b|is\s+your\s+answer|(?:=|equals)\s*(?:x|the\s+answer)\b)"
)
_CONTINUES = re.compile(r"\s*\)*\s*[-+*/^]\s*[\w(.]|\)*\(")  # 5 + ..., (-5)^2, -4(3)
_GIVEN = re.compile(
    r"\b(?:substitute|substituting|plug|plugging|when|where|if|let|set|suppose|assume|at|with|for"
    r"|using|into)\b[^=]*=\s*$"
)
_CLAUSE_BEFORE = re.compile(r"[?!;\n]|\.(?=\s)")
_CLAUSE_AFTER = re.compile(r"[?!;\n]|\.(?:\s|$)")


def _claimed(message: _Message, cand: _Cand) -> bool:
    """Whether the message states ``cand`` as the answer or a result."""
    before = message.lower[max(0, cand.start - 80) : cand.start]
    ends = list(_CLAUSE_BEFORE.finditer(before))
    if ends:
        before = before[ends[-1].end() :]
    after = message.lower[cand.end : cand.end + 60]
    stop = _CLAUSE_AFTER.search(after)
    if stop:
        after = after[: stop.start()]
    if _AFTER_CUE.match(after):
        return True
    if not _BEFORE_CUE.search(before) or _CONTINUES.match(after):
        return False
    return not _GIVEN.search(before)  # "substitute x = -2", "when x = 0": a given value, not a result


def _stated_results(message: _Message) -> list[_Cand]:
    """Values put after "the answer is" / "result:" as a calculation or a roman numeral ("the answer is 6 + 6",
    "the answer is XII"), evaluated: these are claims whatever their form."""
    out = []
    for m in _STRONG_CUE.finditer(message.lower):
        for segment in message.segments:
            if 0 <= segment[0].start - m.end() <= 2:
                side = _split_sides(segment)[0]
                if not side:
                    continue
                try:
                    value = parse_expression(" ".join(item.math for item in side), None).lhs
                except (AnswerFormatError, ValueError, TypeError, ZeroDivisionError):
                    continue
                if value.is_Rational:
                    start, end = side[0].start, side[-1].end
                    out.append(
                        _Cand(
                            message.text[start:end], start, end, value=Fraction(int(value.p), int(value.q)), stated=True
                        )
                    )
        roman = re.match(r"[IVXLCDM]{2,}\b", message.text[m.end() :])
        if roman and (value := _roman(roman.group())):
            out.append(_Cand(roman.group(), m.end(), m.end() + roman.end(), value=Fraction(value), stated=True))
    return out


_ROMAN = tuple(
    zip("M CM D CD C XC L XL X IX V IV I".split(), (1000, 900, 500, 400, 100, 90, 50, 40, 10, 9, 5, 4, 1), strict=True)
)


def _roman(text: str) -> int | None:
    """The value of a roman numeral written the standard way (XII, not IIIIIIIIIIII), else None."""
    total, left = 0, text
    for numeral, value in _ROMAN:
        while left.startswith(numeral):
            total += value
            left = left[len(numeral) :]
    canonical, rest = "", total  # written back: only the standard form counts
    for numeral, value in _ROMAN:
        while rest >= value:
            canonical += numeral
            rest -= value
    return total if not left and canonical == text and total > 0 else None


# ---------------------------------------------------------------------------------------------------------
# Matching candidates against an answer spec


def _matching(message: _Message, spec: dict, strict: bool = False) -> list[_Cand]:
    """The candidates in ``message`` that are equivalent to the answer of ``spec`` (claimed or not). ``strict``
    (a choice's text read as an expression): an equation only as an equation, not by its right side."""
    if not isinstance(spec, dict) or validate_spec(spec):
        return []
    kind = spec["type"]
    if kind == "numeric":
        out = _numeric_matches(message, spec)
    elif kind == "expression":
        out = _expression_matches(message, spec, strict)
    elif kind == "choice":
        out = _choice_matches(message, spec)
    else:
        out = _text_matches(message, spec)
    for span, start, end, hidden in message.decoded:
        if _matching(hidden, spec):
            out.append(_Cand(span, start, end, "number", stated=True))
    return out


def _numeric_matches(message: _Message, spec: dict) -> list[_Cand]:
    percent = bool(spec.get("percent"))
    target = spec_number(spec["value"], percent)
    allowed = spec_number(spec.get("tolerance") or 0) + spec_number(spec.get("relative_tolerance") or 0) * abs(target)
    candidates = message.numbers + _stated_results(message) + _spaced_digits(message) + _coefficients_and_roots(message)
    return [c for c in candidates if c.value is not None and _number_matches(c, target, allowed, percent)]


# A coefficient before a function ("-1/4 log(z)": the number glued to a word is otherwise not read, and the minus of
# "...-1/4" otherwise taken for an operation) and an exact root stated as a result ("= sqrt(36)" is 6).
_COEFFICIENT_RE = re.compile(
    r"(?<![\w.])(?P<sign>-\s*)?(?P<num>\d+(?:\.\d+)?(?:/[1-9]\d*)?)\s*(?=(?:log|ln|sin|cos|tan)\b)"
)
_ROOT_RESULT_RE = re.compile(r"=\s*(?:sqrt|√)\s*\(?\s*(?P<num>\d+)\s*\)?")


def _coefficients_and_roots(message: _Message) -> list[_Cand]:
    out = []
    for m in _COEFFICIENT_RE.finditer(message.text):
        value = Fraction(m.group("num")) * (-1 if m.group("sign") else 1)
        out.append(_Cand(m.group(), m.start(), m.end(), value=value, stated=True))
    for m in _ROOT_RESULT_RE.finditer(message.text):
        root = math.isqrt(int(m.group("num")))
        if root * root == int(m.group("num")):
            out.append(_Cand(m.group(), m.start(), m.end(), value=Fraction(root), stated=True))
    return out


def _spaced_digits(message: _Message) -> list[_Cand]:
    return [
        _Cand(m.group(), m.start(), m.end(), value=Fraction(int(re.sub(r"\D", "", m.group()))), weak=True)
        for m in _SPACED_DIGITS_RE.finditer(message.text)
    ]


def _number_matches(cand: _Cand, target: Fraction, allowed: Fraction, percent: bool) -> bool:
    values = [] if cand.rate else [cand.value]
    if cand.percent or percent:
        values.append(cand.value / 100)
    for value in values:
        if abs(value - target) <= allowed:
            return True
        # 0.33 or 0.333 for 1/3: rounded to as many places as written (two or more).
        if (
            cand.places >= 2
            and (target * 10**cand.places).denominator != 1
            and abs(value - target) <= Fraction(1, 2 * 10**cand.places)
        ):
            return True
    return False


def _expression_parts(spec: dict) -> tuple[list[dict], list[dict]]:
    """(specs to grade equations with, specs to grade plain expressions with). For an answer ``y = 2x + 1`` a
    plain ``2x + 1`` also gives it away."""
    value = spec["value"]
    parsed = parse_expression(value, None)
    if parsed.rhs is None:
        return [], [spec]
    lhs_text, rhs_text = value.split("=", 1)
    names = spec.get("variables") or sorted(s.name for s in parsed.lhs.free_symbols | parsed.rhs.free_symbols)
    sides = []
    for side, other in ((parsed.lhs, rhs_text), (parsed.rhs, lhs_text)):
        if side.is_Symbol:
            sides.append({"type": "expression", "value": other.strip(), "variables": list(names)})
    return [spec], sides


def _expression_matches(message: _Message, spec: dict, strict: bool = False) -> list[_Cand]:
    equation_specs, expression_specs = _expression_parts(spec)
    if strict and equation_specs:
        expression_specs = []
    out = []
    for cand in message.expressions() + [c for c in _stated_results(message)]:
        math = cand.math or str(cand.value)
        written = set(re.findall(r"[A-Za-z]", math))
        for candidate_spec in equation_specs if cand.equation else expression_specs:
            # Only a span with every letter of the answer can equal it (an answer in x and y needs both).
            if _letters(candidate_spec["value"]) <= written and _grades_correct(candidate_spec, math):
                out.append(cand)
                break
    return out


@functools.lru_cache(maxsize=1024)
def _letters(value: str) -> frozenset[str]:
    parsed = parse_expression(value, None)
    symbols = parsed.lhs.free_symbols | (parsed.rhs.free_symbols if parsed.rhs is not None else set())
    return frozenset("".join(s.name for s in symbols))  # letters, as the span's are counted: theta -> t, h, e, a


def _grades_correct(spec: dict, raw: str) -> bool:
    return _grades_correct_cached(json.dumps(spec, sort_keys=True), raw)


@functools.lru_cache(maxsize=4096)
def _grades_correct_cached(spec_json: str, raw: str) -> bool:
    """Grading an expression takes milliseconds (sympy), and a step's hints and candidates repeat its spans."""
    try:
        return grade(json.loads(spec_json), raw).correct
    except (AnswerFormatError, ValueError, TypeError, ZeroDivisionError, RecursionError):
        return False


_NUMBER_TEXT = re.compile(r"[-+]?[\d\s.,/]+%?")


def _derived_spec(text: str) -> dict:
    """How to recognise a choice's text: as a number, an expression or words."""
    plain = _normalize(text)
    try:
        if _NUMBER_TEXT.fullmatch(plain):  # not "x = 3", which the number reader would take as 3
            percent = plain.endswith("%")
            spec_number(plain, percent)
            return {"type": "numeric", "value": plain, **({"percent": True} if percent else {})}
    except ValueError:
        pass
    words = re.findall(r"[A-Za-z]{2,}", plain)
    if re.search(r"[\d=+*/^-]", plain) and all(w.lower() in _FUNCTIONS | _CONSTANTS for w in words):
        candidate = {"type": "expression", "value": plain}
        try:
            if not validate_spec(candidate) and parse_expression(plain, None).lhs is not None:
                return candidate
        except AnswerFormatError:
            pass
    return {"type": "text", "value": text}


_CHOICE_CUES = (
    r"(?:(?P<strong>answer\s*(?:is|would\s+be|should\s+be|must\s+be|=|:)|answer's|choose|chose|pick|select"
    r"|go\s+(?:with|for)|(?:correct|right|best)\s+(?:one|option|choice|answer)\s+is)|it's|it\s+is|that's|try)"
)
_CHOICE_BEFORE = re.compile(
    _CHOICE_CUES + r"\s*(?:the\s+)?(?P<kw>option|choice|letter|answer|number|no\.?)?\s*#?\s*(?P<br>[(\[])?"
    r"(?P<ref>[a-z]|\d{1,2})[)\]]?(?![\w'])",
    re.I,
)
_CHOICE_AFTER = re.compile(
    r"(?:(?P<kw>option|choice|letter|answer|number)\s*#?\s*)?(?P<br>[(\[])?\b(?P<ref>[a-z]|\d{1,2})\b[)\]]?\s*"
    r"(?:is|'s|would\s+be|seems)\s+(?:the\s+)?(?:correct|right|answer|one|solution|best)\b",
    re.I,
)
_ORDINALS = {"first": 0, "second": 1, "third": 2, "fourth": 3, "fifth": 4, "sixth": 5}
_ORDINAL_RE = re.compile(
    r"\b(?P<ord>first|second|third|fourth|fifth|sixth|last)\s+(?:option|choice|one|answer)\b", re.I
)


def _choice_matches(message: _Message, spec: dict) -> list[_Cand]:
    choices, correct = spec["choices"], spec["correct"]
    wanted = set(correct) if isinstance(correct, list) else {correct}
    numbers = any(_derived_spec(choice)["type"] == "numeric" for choice in choices)
    out = []
    for pattern in (_CHOICE_BEFORE, _CHOICE_AFTER):
        for m in pattern.finditer(message.text):
            ref, named = m.group("ref"), m.group("kw") or m.group("br")
            if ref.isdigit() and not named and (numbers or not m.groupdict().get("strong")):
                continue  # "it's 2", or choices that are numbers: a value, not a choice's number
            if ref.isalpha():
                if ref == "I" and not (m.group("kw") or m.group("br")):
                    continue
                if ref.islower() and not (m.group("kw") or m.group("br")):
                    continue  # the article "a", a variable
                indices = {ord(ref.upper()) - 65}
            else:
                indices = {int(ref), int(ref) - 1}  # sent as an index (the form's value) or counted from 1
            if indices & wanted:
                out.append(_Cand(m.group(), m.start(), m.end(), "choice-ref", stated=True))
    for m in _ORDINAL_RE.finditer(message.text):
        index = len(choices) - 1 if m.group("ord").lower() == "last" else _ORDINALS[m.group("ord").lower()]
        cand = _Cand(m.group(), m.start(), m.end(), "choice-ref", weak=True)
        if index in wanted:
            out.append(cand)
    for index in sorted(wanted):
        for cand in _matching(message, _derived_spec(choices[index]), strict=True):
            out.append(dataclasses.replace(cand, kind="choice-text"))
    out += _letter_named_choices(message, choices, wanted)
    return out


def _letter_named_choices(message: _Message, choices: list, wanted: set) -> list[_Cand]:
    """Choices that are bare letters naming things in the problem ("Company A", "Company B"): a statement that
    names the correct letter and no other ("so company B offers the better plan") gives the answer away; a
    question, or a sentence naming both, compares them."""
    letters = [str(choice).strip() for choice in choices]
    if not all(len(letter) == 1 and letter.isupper() for letter in letters):
        return []
    out = []
    for m in re.finditer(r"[^.!?\n]+[.!?]*", message.text):
        sentence = m.group()
        if sentence.rstrip().endswith("?"):
            continue
        named = {i for i, letter in enumerate(letters) if re.search(rf"(?<![\w$]){letter}(?![\w(])", sentence)}
        if len(named) == 1 and named <= wanted:
            out.append(_Cand(sentence.strip(), m.start(), m.end(), "choice-ref", stated=True))
    return out


_WEAK_TEXTS = {"yes", "no", "true", "false", "none", "all", "both", "neither", "equal", "same", "more", "less"}


def _text_matches(message: _Message, spec: dict) -> list[_Cand]:
    value = spec["value"]
    out = []
    for accepted in [value] if isinstance(value, str) else value:
        plain = " ".join(_normalize(accepted).lower().split()).rstrip(".!, ")
        if not plain:
            continue
        if _NUMBER_TEXT.fullmatch(plain):
            derived = _derived_spec(plain)
            if derived["type"] == "numeric":
                out += _numeric_matches(message, derived)
                continue
        weak = len(plain) <= 3 or plain in _WEAK_TEXTS
        pattern = r"(?<!\w)" + r"\s+".join(map(re.escape, plain.split())) + r"(?!\w)"
        for m in re.finditer(pattern, message.lower):
            # "No, this is a circle.": a short answer opening a sentence, as a reply, is stated.
            before = message.lower[: m.start()].rstrip(" \"'*_")
            opens = not before or before.endswith((".", "!", "?", "\n", ":"))
            replies = opens and message.lower[m.end() : m.end() + 1] in (",", ".", "!", ";")
            out.append(
                _Cand(message.text[m.start() : m.end()], m.start(), m.end(), "text", weak=weak, stated=weak and replies)
            )
    return out


# ---------------------------------------------------------------------------------------------------------
# Rule 1: leaks


@dataclass(frozen=True)
class _Reference:
    """What the learner has already seen or written: the problem and their own attempts."""

    values: frozenset  # every number in it, also without its sign
    compact: str  # all of it, as _compact writes it


def _compact(text: str) -> str:
    """Lowercase, without "*" and without spaces next to operators: "2x + 6" and "2x+6" read the same."""
    text = " ".join(text.lower().replace("*", "").split())
    return re.sub(r" ?([^\w ]) ?", r"\1", text)


@functools.lru_cache(maxsize=128)
def _reference(problem_text: str, learner_answers: tuple[str, ...]) -> _Reference:
    values = set()
    texts = [problem_text, *learner_answers]
    for k, text in enumerate(texts):
        normalized = _normalize(text)
        tokens = _tokenize(normalized)
        numbers = _numbers(tokens, normalized, everything=True)
        seen = [c.value for c in numbers] + [c.value / 100 for c in numbers if c.percent]
        values.update(seen)
        if k == 0:  # in the problem, the parts are on screen too: the 6 of 1/6, the 7 of -7x
            parts = [t.value for t in tokens if t.kind == "num"]
            values.update(parts)
            values.update(abs(v) for v in [*seen, *parts])
        # A learner's answer exempts only itself: 2.5 is news to someone who wrote -2.5, and 2 to one who wrote 1/2.
    return _Reference(frozenset(values), "\n".join(_compact(_normalize(text)) for text in texts))


def _known(cand: _Cand, reference: _Reference) -> bool:
    if cand.value is not None:
        return cand.value in reference.values or (cand.percent and cand.value / 100 in reference.values)
    return _written_in(_compact(cand.span), reference.compact)


def _written_in(compact: str, reference: str) -> bool:
    """Whether ``compact`` occurs in ``reference`` as a whole (2x+6 is not in 12x+60, 2.5 is not in -2.5)."""
    return (
        bool(compact)
        and re.search(r"(?<![a-z0-9.\-])" + re.escape(compact) + r"(?![a-z0-9.]*[0-9a-z])", reference) is not None
    )


def _leaks(text: str, context: GuardContext) -> list[tuple[str, str]]:
    """(span, which answer) for each leak."""
    if context.bottom_out_allowed:
        return []
    specs = []
    if context.learner_correct is not True:  # once the learner has the step right, it is no secret
        specs.append(("the step's answer", context.step_answer))
    if context.final_answer is not None and context.final_answer != context.step_answer:
        specs.append(("the final answer", context.final_answer))
    if not specs:
        return []
    message = _Message(text)
    reference = _reference(context.problem_text or "", tuple(context.learner_answers or ()))
    out = [(span, "an answer") for span in _answer_statements(message)]
    for label, spec in specs:
        matches = _matching(message, spec)
        for cand in matches:
            if cand.stated or _claimed(message, cand):
                out.append((cand.span, label))
                continue
            if cand.weak:
                continue
            if cand.kind == "choice-text":
                # The right choice's text singles it out wherever it is ("... in m+n ways", "Blue-red"), even though
                # the options are on screen; only the options read out side by side are neutral ("A or B?").
                if not _names_another_choice(message, spec, cand):
                    out.append((cand.span, label))
                continue
            if not _known(cand, reference):
                out.append((cand.span, label))
    return out


# "The answer is ...", "the solution to this problem is indeed ...", "Answer: ...": whatever follows, a tutor
# does not say it (a weak model fills it with the answer, a wrong one, or the learner's words). "Your answer is
# close" is feedback, not an answer, and "What do you think the answer is?" has nothing after the cue.
_ANSWER_IS = re.compile(
    r"\b(?:(?:the|a|this|that|its|correct|right|final|actual|real|true|exact)\s+)+(?:answer|solution)s?\b"
    r"(?:\s+(?!(?:is|are|was|were|would|will|should|must|equals?)\b)[\w'$()]+){0,6}?"
    r"\s*(?:is|are|was|were|would\s+be|will\s+be|should\s+be|must\s+be|=|:|equals|equal\s+to)(?![\w=])"
    r"|(?:^|(?<=[\n.!?;*\"'(]))\s*(?:final\s+|correct\s+)?(?:answer|solution)s?\s*[:=]"
    r"|\bfinal\s+(?:result|value)\s+(?:is|was|=|:)(?![\w=])",
    re.I,
)
# "... and that's your answer": what came before is named as the answer.
_NAMED_ANSWER = re.compile(
    r"\b(?:that's|that\s+is|this\s+is|there's)\s+(?:your|the)\s+(?:final\s+)?(?:answer|solution)\b", re.I
)


def _answer_statements(message: _Message) -> list[str]:
    out = []
    for m in _ANSWER_IS.finditer(message.text):
        rest = message.text[m.end() :]
        stop = re.search(r"[?!;\n]|\.(?:\s|$)", rest)
        said = rest[: stop.start() if stop else len(rest)].strip(" \t\"'*_:`")
        clause = re.split(r"[.?!;\n]\s", message.text[: m.start()])[-1]
        if stop and stop.group() == "?" and re.search(r"\b(?:what|which|how|why|when|where)\b", clause, re.I):
            continue  # "What is the answer of the function after the rule is applied?" asks for it
        if said:
            out.append(message.text[m.start() : m.end() + len(rest[: stop.start() if stop else len(rest)])].strip())
    for m in _NAMED_ANSWER.finditer(message.text):
        if not message.text[m.end() :].lstrip().startswith("?"):  # "Is that the answer?" asks
            out.append(m.group())
    return out


def _names_another_choice(message: _Message, spec: dict, cand: _Cand) -> bool:
    """Whether the sentence around ``cand`` also names a wrong option: the options read out side by side."""
    start = max((m.end() for m in re.finditer(r"[.?!;\n]\s", message.text[: cand.start])), default=0)
    stop = re.search(r"[.?!;\n](?:\s|$)", message.text[cand.end :])
    sentence = _Message(message.text[start : cand.end + (stop.start() if stop else len(message.text))], depth=1)
    correct = spec["correct"]
    wanted = set(correct) if isinstance(correct, list) else {correct}
    inside = range(cand.start - start, cand.end - start)
    return any(
        other.start not in inside and other.end - 1 not in inside  # "Blue" inside "Blue-red" is not another
        for i, choice in enumerate(spec["choices"])
        if i not in wanted
        for other in _matching(sentence, _derived_spec(choice), strict=True)
    )


def _leak_reasons(text: str, context: GuardContext) -> list[str]:
    reasons = []
    for span, label in _leaks(text, context):
        reasons.append(f"leak: {span!r} states {label}")
    return reasons


# ---------------------------------------------------------------------------------------------------------
# Rule 2: arithmetic

# Before an equation that is quoted or put in doubt rather than claimed: "you wrote 20 - 5 = 11", "check whether".
_QUOTING = re.compile(
    r"(?:\b(?:whether|if|check|checking|true\s+that|really|your|suppose|assume|why|whenever|unless|not"
    r"|you\s+(?:wrote|said|claimed|have|got|think|thought|put|had))\s*(?:that\s*)?|[\"'])\s*$"
)


# An ellipsis inside a calculation ("2 × 2 × ... = 5040", "= 1 + 2 + ... + 10"): the guard cannot check what it
# leaves out, so the claim is not taken on trust.
_ELLIPSIS_CALCULATION = re.compile(r"[-+*/^]\s*\.{3}|\.{3}\s*[-+*/^]\s*[\w(]")
_CLAIM_ON_LINE = re.compile(r"=|\bequals?\b|\bgives\b|\bmakes\b")


_WHICH_IS = re.compile(r",\s*(?:which|that)\s+(?:is|equals|makes|gives)\s+(?=[-\d(])", re.I)


def _arithmetic_reasons(text: str, context: GuardContext) -> list[str]:
    # "2 times 11.548, which is 22.572" claims 2 × 11.548 = 22.572: read it as one.
    message = _Message(_WHICH_IS.sub(" equals ", text[:MAX_TEXT]))
    reference = _reference(context.problem_text or "", tuple(context.learner_answers or ()))
    known = _known_solutions(context)
    reasons = []
    for line in message.text.split("\n"):
        dots = _ELLIPSIS_CALCULATION.search(line)
        if dots and _CLAIM_ON_LINE.search(line) and not _written_in(_compact(line), reference.compact):
            reasons.append(f"arithmetic: a calculation through an ellipsis cannot be checked ({line.strip()[:60]!r})")
    for segment in message.segments:
        sides = _split_sides(segment)
        for left, right in zip(sides, sides[1:], strict=False):
            if not left or not right:
                continue
            reason = _check_claim(message, left, right, reference, known)
            if reason:
                reasons.append(reason)
    return reasons


def _check_claim(
    message: _Message, left: list[_Item], right: list[_Item], reference: _Reference, known: dict
) -> str | None:
    """The reason the claim ``left = right`` is false, or None (true, not judged, or not a claim)."""
    try:
        lhs = parse_expression(" ".join(i.math for i in left), None).lhs
        rhs = parse_expression(" ".join(i.math for i in right), None).lhs
    except (AnswerFormatError, ValueError, TypeError, ZeroDivisionError):
        return None  # not something the parser reads: no claim the guard can judge
    if {i.unit for i in left if i.unit} != {i.unit for i in right if i.unit}:
        return None  # 1 km = 1000 m: a conversion, not arithmetic on plain numbers
    written = f"{_side_text(message.text, left)} = {_side_text(message.text, right)}"
    before = message.lower[max(0, left[0].start - 40) : left[0].start]
    if (
        _QUOTING.search(before)
        or _written_in(_compact(written), reference.compact)
        or _hypothetical(message, left, right)
    ):
        return None  # a question about a claim, the learner's own work quoted back, a value to try
    try:
        return _judge(written, lhs, rhs, left, right, known)
    except (TypeError, ValueError, ZeroDivisionError, AttributeError):
        return None


_HYPOTHESIS = re.compile(
    r"\b(?:set|setting|let|suppose|assume|imagine|when|where|at|substitute|substituting|plug|plugging|put|try|using"
    r"|into|with|for|if|whether|solve|solving)\b[^.?!;]*$"
)
_CONCLUSION = re.compile(r"\b(?:so|therefore|thus|hence|means|gives|get|gets|answer|solution|result)\b[^.?!;]*$")
_YES_NO = re.compile(r"(?:^|[.?!;:]\s+|\n)\s*(?:is|are|does|do|did|can|could|would|will|should|was)\b[^.?!;\n]*$", re.I)


def _hypothetical(message: _Message, lhs_items: list[_Item], rhs_items: list[_Item]) -> bool:
    """An equation that is not claimed: a yes/no question about it ("Is 20 - 5 = 11?", "Is the result 1 = -4
    ever true?"), or a value to try ("Substitute x = 3", "where x = 0") unless it follows a conclusion ("so
    x = 3")."""
    before = message.text[: lhs_items[0].start]
    after = message.text[rhs_items[-1].end :]
    end = re.search(r"[.?!;\n]", after)
    if end and end.group() == "?" and _YES_NO.search(before):
        return True
    if not any(item.kind == "var" for item in [*lhs_items, *rhs_items]):
        return False
    clause = re.split(r"[.?!;\n]", before.lower())[-1]
    conclusion = _CONCLUSION.search(clause)
    hypothesis = _HYPOTHESIS.search(clause)
    if hypothesis and (not conclusion or hypothesis.start() > conclusion.start()):
        return True
    single = len(lhs_items) == 1 and lhs_items[0].kind == "var" or len(rhs_items) == 1 and rhs_items[0].kind == "var"
    return single and not conclusion


def _judge(written: str, lhs, rhs, lhs_items, rhs_items, known: dict) -> str | None:
    symbols = lhs.free_symbols | rhs.free_symbols
    if not symbols:
        if _same_number(lhs, rhs, lhs_items, rhs_items):
            return None
        return f"arithmetic: {written} is false"
    if len(symbols) == 1:
        (symbol,) = symbols
        values = known.get(symbol.name)
        if values:
            difference = lhs - rhs
            if any(_holds(difference, symbol, value) for value in values):
                return None
            shown = ", ".join(f"{symbol.name} = {v}" for v in sorted(values)[:3])
            return f"arithmetic: {written} is false for {shown}"
    if lhs.free_symbols == rhs.free_symbols and not equivalent(lhs, rhs) and _slip(lhs - rhs):
        # A simplification that is off by one term ("2x + 3x = 6x", "2(x + 3) = 2x + 3"), unless a numeric
        # answer solves it: then it is an equation on the way to that answer.
        if len(symbols) == 1 and any(_holds(lhs - rhs, next(iter(symbols)), v) for v in known.get("", ())):
            return None
        return f"arithmetic: {written} is false"
    return None


def _slip(difference) -> bool:
    """Whether two sides that are not equal differ by a number or a single term (2x + 3x = 6x: -x), as a wrong
    simplification does. Otherwise the claim reads as an equation to solve ("15m + 1350 = 25m + 750")."""
    if sum(1 for _ in sympy.preorder_traversal(difference)) > 200:
        return False
    try:
        expanded = sympy.expand(sympy.cancel(difference))
    except (sympy.PolynomialError, TypeError, ValueError):
        return False
    return len(sympy.Add.make_args(expanded)) == 1


def _holds(difference, symbol, value: Fraction) -> bool:
    at = difference.subs(symbol, sympy.Rational(value.numerator, value.denominator))
    return bool(at.is_zero) or (at.is_number and abs(complex(at)) < 1e-12)


def _same_number(lhs, rhs, lhs_items, rhs_items) -> bool:
    if (lhs - rhs).is_zero or equivalent(lhs, rhs):
        return True
    # A decimal for a value that has more places: 1/3 = 0.33, 2pi = 6.28, sqrt(2) = 1.4 (but not 1/3 = 0.3:
    # a fraction must be rounded to two places or more).
    for items, exact, rounded in ((rhs_items, lhs, rhs), (lhs_items, rhs, lhs)):
        if len(items) == 1 and items[0].kind == "num" and (items[0].places >= 2 or not exact.is_Rational):
            places = items[0].places
            if exact.is_Rational and (exact * 10**places).is_Integer:
                continue
            try:
                if abs(float(exact - rounded)) <= 0.5 * 10**-places + 1e-12:
                    return True
            except TypeError:
                continue
    return False


@functools.lru_cache(maxsize=128)
def _problem_solutions(problem_text: str) -> dict[str, frozenset]:
    """Solutions of the one-letter equations in the problem ("Solve 3x + 5 = 17" -> x: 4), so that the
    steps of solving it ("3x = 12") count as true claims. A letter is left out when its equations disagree or
    one of them has solutions the guard cannot list (irrational, or not a polynomial of degree 1 or 2)."""
    solutions: dict[str, set | None] = {}
    message = _Message(problem_text)
    for segment in message.segments:
        sides = _split_sides(segment)
        if len(sides) != 2 or not sides[0] or not sides[1]:
            continue
        try:
            lhs = parse_expression(" ".join(i.math for i in sides[0]), None).lhs
            rhs = parse_expression(" ".join(i.math for i in sides[1]), None).lhs
        except (AnswerFormatError, ValueError, TypeError, ZeroDivisionError):
            continue
        for name, values in _solve(lhs - rhs).items():
            if name in solutions and solutions[name] != values:
                values = None
            solutions[name] = values
    return {name: frozenset(values) for name, values in solutions.items() if values}


def _solve(expr) -> dict[str, set | None]:
    """{letter: its rational solutions} for an equation ``expr = 0`` in one letter; None when they cannot all be
    listed. {} for an equation in several letters or none."""
    symbols = expr.free_symbols
    if len(symbols) != 1:
        return {}
    (symbol,) = symbols
    try:
        numerator = sympy.together(expr).as_numer_denom()[0]
        poly = sympy.Poly(numerator, symbol)
    except (sympy.PolynomialError, sympy.GeneratorsError, ValueError, TypeError):
        return {symbol.name: None}
    if not 1 <= poly.degree() <= 2 or not poly.domain.is_QQ and not poly.domain.is_ZZ:
        return {symbol.name: None}
    roots = sympy.roots(poly)
    if not roots or not all(r.is_Rational for r in roots):
        return {symbol.name: None}
    return {symbol.name: {Fraction(int(r.p), int(r.q)) for r in roots}}


def _known_solutions(context: GuardContext) -> dict[str, frozenset]:
    """The values of letters the guard can be sure of: solutions of the problem's one-letter equations and of an
    equation answer ("x = 3"). Numeric answers go under "": "What is y?" says nothing about x, but an equation
    with x on both sides that a numeric answer solves is a step of solving, not a false identity."""
    known = {name: set(values) for name, values in _problem_solutions(context.problem_text or "").items()}
    for spec in (context.step_answer, context.final_answer):
        if isinstance(spec, dict) and not validate_spec(spec) and spec["type"] == "numeric":
            known.setdefault("", set()).add(spec_number(spec["value"], bool(spec.get("percent"))))
        if isinstance(spec, dict) and not validate_spec(spec) and spec["type"] == "expression":
            parsed = parse_expression(spec["value"], None)
            if parsed.rhs is not None:
                for name, values in _solve(parsed.lhs - parsed.rhs).items():
                    if values:
                        known.setdefault(name, set()).update(values)
    return {name: frozenset(values) for name, values in known.items()}


# ---------------------------------------------------------------------------------------------------------
# Rule 3: endorsing a wrong answer

_ENDORSEMENTS = [
    re.compile(p, re.I)
    for p in (
        r"\b(?:your|the|that|this)\s+(?:answer|solution|result)\s+(?:\S+\s+)?(?:is|was|looks)\s+(?:\w+\s+)?"
        r"(?:correct|right|perfect|spot\s+on)\b",
        r"\b(?:that's|that\s+is|this\s+is|it's|it\s+is|you're|you\s+are)\s+(?:absolutely\s+|exactly\s+|totally\s+|just\s+"
        r"|completely\s+|perfectly\s+|so\s+|quite\s+|100%\s+)?(?:right|correct)\b(?!\s+(?:to|that|about|in|when|if)\b)",
        r"(?:^|[.!?]\s+)correct\s*(?:[.!,:]|$)",
        r"\bcorrect\s*!",
        r"\b(?:well\s+done|good\s+job|great\s+job|nice\s+work|great\s+work|nice\s+job|good\s+work|bravo)\b"
        r"(?!\s+(?:for|on|trying|so\s+far)\b)",
        r"\byou(?:'ve|\s+have)?\s+got\s+it\b(?!\s+(?:wrong|backwards|mixed|confused|almost|partly|half))",
        r"\byou\s+(?:nailed|solved|cracked)\s+it\b",
        r"(?:^|[.!?]\s+)exactly\s*[!.]",
        r"\bexactly\s+right\b",
        r"\bspot\s+on\b",
        r"(?:^|[.!?]\s+)perfect\s*[!.]",
        r"\bthat's\s+it\b(?!\s+for\b)",
        r"\b(?:you|you've|you\s+have)\s+(?:got|found|gave|reached|written|wrote|have)\s+(?:the\s+)?(?:right|correct)"
        r"\s+answer\b",
        r"\b(?:right|correct)\s+answer\s*!",
        r"\byes\s*!",
        r"\byes\s*,?\s+(?:that's|that\s+is|it's|it\s+is|you're|you\s+are|exactly|correct|right)\b",
        r"\b(?:is|was)\s+(?:correct|right)\s*[!.]",
    )
]
_HEDGES = re.compile(r"\b(?:not|never|almost|nearly|partly|partially|whether|if|check|unless|sure|see|quite)\b|n't\b")


def _endorsement_reasons(text: str, context: GuardContext) -> list[str]:
    if context.learner_correct is not False:
        return []
    plain = _normalize(text)
    reasons = []
    for pattern in _ENDORSEMENTS:
        for m in pattern.finditer(plain):
            before = re.split(r"[.!?;]\s", plain[max(0, m.start() - 30) : m.start()])[-1]
            if _HEDGES.search((before + m.group()).lower()):
                continue  # "not quite right", "check whether 11 is correct"
            reasons.append(f"endorsement: {m.group().strip(' .!?')!r} while the learner's answer is wrong")
            break
    if not reasons and context.learner_answers:
        reasons += _wrong_answer_affirmed(plain, context.learner_answers[-1])
    return reasons[:1]


def _wrong_answer_affirmed(plain: str, wrong: str) -> list[str]:
    """ "The answer is (indeed) 0.5" or "0.5 is correct" about the learner's own wrong answer."""
    value = re.escape(" ".join(wrong.split()))
    if not value:
        return []
    affirmed = re.compile(
        rf"\b(?:the|your)\s+(?:correct\s+|right\s+|final\s+)?(?:answer|result|solution)\s+(?:is|was|would\s+be)\s+"
        rf"(?:indeed\s+|really\s+|actually\s+|exactly\s+)?{value}(?!\w|\.\d)|(?<![\w.]){value}\s+is\s+(?:indeed\s+)?"
        rf"(?:the\s+)?(?:correct|right)\b",
        re.I,
    )
    for found in affirmed.finditer(plain):
        before = re.split(r"[.!?;]\s", plain[max(0, found.start() - 30) : found.start()])[-1]
        if not _HEDGES.search((before + found.group()).lower()):  # "check whether 11 is correct"
            return [f"endorsement: {found.group()!r} affirms the learner's wrong answer"]
    return []


# ---------------------------------------------------------------------------------------------------------
# Rule 4: minimum quality

_IMPERATIVES = set(
    "try check look think write compute calculate find work figure consider remember recall notice note start begin "
    "subtract add multiply divide simplify expand factor factorise factorize combine collect substitute plug compare "
    "rewrite estimate solve use undo isolate count draw list read reread apply take move set identify convert round "
    "line cancel distribute group split break focus imagine picture ask see test verify keep make put replace "
    "express evaluate determine decide go show sketch label mark circle underline share halve double square match "
    "sort order plot graph trace complete fill enter type rearrange flip invert reduce scale measure do don't "
    "be describe explain name tell say give pick choose select revisit review watch recount redo retry recheck "
    "recalculate rethink reconsider redraw stop pause".split()
)
_FILLERS = set(
    "now next first then so okay ok hint tip great good well alright also and but here again second finally "
    "quick instead".split()
)
_ASKING = re.compile(
    r"^(?:can\s+you|could\s+you|would\s+you|will\s+you|you\s+can(?!'t|not)|you\s+could(?!n't)|you\s+should(?!n't)"
    r"|you\s+need\s+to|you\s+might"
    r"|you\s+may\s+want|you'll\s+want|you\s+want\s+to|try|(?:let's|let\s+us)(?!\s+say)|think\s+about|ask\s+yourself"
    r"|make\s+sure"
    r"|remember|it\s+(?:may|might|could)\s+help\s+to|it\s+helps\s+to)\b",
    re.I,
)
# A line of a script rather than the tutor's own words: a speaker's label ("Pupil:", "The pupil now says:",
# "Teacher:", "Tutor:"), a label of the prompt ("Problem:", "Current step:", "Your move:"), or the prompt's wording.
_SPEAKER = re.compile(
    r"(?:^|[\s\"'*(>])(?:(?:the|a|an|my|your|this|original)\s+)?(?:pupil|student|learner|teacher|tutor|user|assistant"
    r"|system|problem|question|current\s+step|step|move|task|notes?|teacher\s+notes?)(?:\s+(?!is\b)[\w']+){0,3}\s*:",
    re.I,
)
_PROMPT_WORDS = re.compile(
    r"\b(?:pupils?|teacher\s+notes?|hidden\s+from|your\s+move|your\s+next\s+(?:reply|move)|current\s+step"
    r"|never\s+say\s+it|authored\s+hint|(?:the|this|a|our)\s+(?:student|learner)(?:'s)?)\b",
    re.I,
)
_REASONING = set(
    "think thinking find found notice mean means try check solve start compute calculate work know "
    "explain reason figure decide compare estimate".split()
)
_STEP_WORDS = set(
    "equation equations expression expressions side sides term terms operation operations rule formula sign "
    "signs unit units value values number numbers total result method fraction fractions".split()
)
_STOPWORDS = set(
    "the a an and or of to in on at by for with from is are was were be been it its this that these those what which "
    "how why who when where do does did you your can could would will should there their they them then than into "
    "about have has had not but if so as we us our find write give use need".split()
)


def _quality_reasons(text: str, context: GuardContext) -> list[str]:
    if not text or not text.strip():
        return ["quality: empty"]
    reasons = []
    if len(text) > MAX_LENGTH:
        reasons.append(f"quality: too long ({len(text)} > {MAX_LENGTH} characters)")
    plain = _normalize(text)
    problem = _normalize(context.problem_text or "")
    if script := _script_line(plain, problem, context):
        reasons.append(f"quality: speaks as someone else or replays the prompt ({script!r})")
    if not _asks_or_instructs(plain, problem):
        reasons.append("quality: neither a question nor an instruction")
    if _copies(plain, problem):
        reasons.append("quality: repeats the problem")
    return reasons


def _script_line(plain: str, problem: str, context: GuardContext) -> str:
    """The part of the message that is a script line, the prompt replayed or a learner's message quoted back."""
    lowered_problem = problem.lower()
    for pattern in (_SPEAKER, _PROMPT_WORDS):
        for m in pattern.finditer(plain):
            if m.group().strip(" \"'*(>:").lower() not in lowered_problem:  # "the student" of a word problem
                return m.group().strip()
    words = re.findall(r"[a-z0-9']+", plain.lower())
    for said in context.learner_messages:
        theirs = re.findall(r"[a-z0-9']+", _normalize(said).lower())
        run = min(4, len(theirs))
        if run < 3:
            continue
        grams = {tuple(theirs[k : k + run]) for k in range(len(theirs) - run + 1)}
        for k in range(len(words) - run + 1):
            if tuple(words[k : k + run]) in grams:
                return " ".join(words[k : k + run])
    return ""


def _asks_or_instructs(plain: str, problem: str = "") -> bool:
    """Whether a sentence of the message is a question about the step (it ends with "?" and names something of the
    problem or its maths, probes the learner's reasoning, or asks "what next?" after some maths), or an
    instruction to act on the step (an imperative, "can you", "try", "let's", ... about the step or reasoning).
    Quoted questions and the tutor talking about itself do not count."""
    problem_words = set(re.findall(r"[a-z0-9]+", problem.lower())) - _STOPWORDS - {"i"}
    generic_ok = False  # "What next?" is a move after some maths of the step, not on its own
    for sentence in re.split(r"(?<=[.!?:;])\s+|\n", plain):
        quoted = re.search(r"\?\s*[\"']", sentence)
        sentence = sentence.strip(" \"'*_()[]")
        words = re.findall(r"[a-z0-9']+", sentence.lower())
        if len(words) < 2:
            continue
        if quoted or {"i'm", "i'll", "i've", "my"} & set(words):
            continue  # a question quoted (the prompt's, the learner's), or the tutor talking about itself
        content = {w for w in words if w not in _STOPWORDS and (len(w) > 1 or w.isdigit() or w not in "ai")}
        maths = re.sub(r"^\d{1,2}[.)]\s+", "", sentence.lower())  # not a list item's number
        about_step = bool(content & (problem_words | _STEP_WORDS)) or bool(
            re.search(r"\d|[+*/^=]|(?<=[\w)])\s*-\s*(?=[\d(])|(?<!')\b(?![ai]\b)[a-z]\b", maths)
        )  # it names something of the problem or its maths (not just "the next question")
        reasoning = bool(_REASONING & set(words))
        if sentence.rstrip(" \"')*").endswith("?"):
            if "i" in words:
                continue  # about the tutor ("What can I do for you?"), not the step
            if about_step or (generic_ok and {"next", "now", "then"} & set(words)):
                return True
            if {"you", "your", "you're", "we", "us", "let's"} & set(words) and (
                {"how", "why"} & set(words) or reasoning
            ):
                return True  # a probe of the learner's reasoning: "How could you check it?", "Can you see why?"
            generic_ok = generic_ok or about_step
            continue
        generic_ok = generic_ok or about_step
        while words and words[0] in _FILLERS:
            words.pop(0)
        rest = " ".join(words)
        if words[:2] == ["let's", "say"] or words[:3] == ["let", "us", "say"]:
            continue  # "Let's say you're in the office": a story, not a step
        if len(words) >= 2 and (words[0] in _IMPERATIVES or _ASKING.match(rest)) and (about_step or reasoning):
            return True  # an instruction to act on the step ("Go ahead." or "Visit my website" is none)
    return False


def _copies(plain: str, problem: str) -> bool:
    """Whether the message is (nearly) the problem again: part of it word for word, or 80% the same words."""
    if not problem:
        return False
    words = re.findall(r"[a-z0-9]+", plain.lower())
    problem_words = re.findall(r"[a-z0-9]+", problem.lower())
    if len(words) >= 3 and f" {' '.join(words)} " in f" {' '.join(problem_words)} ":
        return True  # "What is x?" for the prompt "What is $x$?"
    mine, theirs = set(words), set(problem_words)
    return len(mine) >= 4 and len(mine & theirs) / len(mine | theirs) >= COPY_JACCARD
