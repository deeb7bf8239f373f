"""Grading of learners' answers against answer specs.

The contract is docs/course-format.md, section "Answer specs". Pure Python + sympy (no Django), so the
course-package validator, the tutoring views and the tests all use the same code.

Learner input is untrusted. Expressions are read by a small parser of our own that builds sympy objects
directly: nothing is ever passed to ``eval`` (which ``sympy.parse_expr`` uses), only whitelisted characters,
names and functions are accepted, and numbers and exponents are bounded so that sympy's automatic
evaluation cannot hang. Equivalence is decided by sympy's ``cancel`` when the expressions are small, and
otherwise by evaluating both at fixed pseudo-random points with mpmath at bounded precision. An expression
spec's optional ``form`` (simplified, expanded, factored) is judged on the parse tree, i.e. on the answer
as the learner wrote it, since sympy has already evaluated 3x + 5x to 8x.
"""

import math
import random
import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction

import mpmath
import sympy

MAX_ANSWER_LENGTH = 200
MAX_EXPONENT = 1000
MAX_NUMBER_BITS = 2048  # exact numbers built from powers (2^1000 fits, 10^1000 does not)
MAX_ROOT_BASE_BITS = 64  # sympy factors the base of sqrt(n) etc.; that gets slow quickly for big n
MAX_BRACKET_DEPTH = 20

CORRECT = "Correct!"
INCORRECT = "Not quite."


class AnswerFormatError(ValueError):
    """The learner's answer cannot be read; ``str(exc)`` tells the learner what to fix."""


@dataclass(frozen=True)
class Grade:
    correct: bool
    feedback: str  # learner-facing; never reveals the right answer
    normalized: str  # how the answer was read, for logs


# ---------------------------------------------------------------------------------------------------------
# Public API


def grade(spec: dict, raw: str) -> Grade:
    """Grade ``raw`` against ``spec``. Raises AnswerFormatError when the answer cannot be read, and a plain
    ValueError when the spec itself is invalid (see validate_spec)."""
    problems = validate_spec(spec)
    if problems:
        raise ValueError("invalid answer spec: " + "; ".join(problems))
    if not isinstance(raw, str) or not raw.strip():
        raise AnswerFormatError("Enter an answer.")
    if len(raw) > MAX_ANSWER_LENGTH:
        raise AnswerFormatError(f"Your answer is too long; keep it under {MAX_ANSWER_LENGTH} characters.")
    return _GRADERS[spec["type"]](spec, raw)


def validate_spec(spec: object) -> list[str]:
    """Return the problems with an answer spec as messages; [] when it is valid."""
    if not isinstance(spec, dict):
        return [f"answer spec must be a mapping, not {type(spec).__name__}"]
    kind = spec.get("type")
    if kind is None:
        return ["answer type missing"]
    if not isinstance(kind, str) or kind not in _FIELDS:
        return [f"unknown answer type {kind!r} (expected numeric, expression, choice or text)"]
    problems = [f"{kind} answer has unknown field {key!r}" for key in spec if key not in _FIELDS[kind]]
    return problems + _VALIDATORS[kind](spec)


def canonical_answer(spec: dict) -> str:
    """One correct answer, written as a learner would type it."""
    kind = spec["type"]
    if kind == "numeric":
        value = spec["value"]
        return value.strip() if isinstance(value, str) else repr(value)  # repr keeps floats exact
    if kind == "expression":
        return spec["value"].strip()
    if kind == "choice":
        correct = spec["correct"]
        return ",".join(str(i) for i in sorted(set(correct))) if isinstance(correct, list) else str(correct)
    value = spec["value"]
    return value if isinstance(value, str) else value[0]


_FIELDS = {
    "numeric": {"type", "value", "tolerance", "relative_tolerance", "percent"},
    "expression": {"type", "value", "variables", "form"},
    "choice": {"type", "choices", "correct"},
    "text": {"type", "value", "case_sensitive"},
}


def _verdict(correct: bool, normalized: str) -> Grade:
    return Grade(correct, CORRECT if correct else INCORRECT, normalized)


# ---------------------------------------------------------------------------------------------------------
# Shared input clean-up

# Typographic characters learners (and phone keyboards) produce, mapped before NFKC so that "x²" becomes
# "x^2" rather than "x2".
_CHAR_MAP = str.maketrans({
    "\u2212": "-", "\u2013": "-", "\u00d7": "*", "\u00b7": "*", "\u22c5": "*", "\u00f7": "/",
    "\u00b2": "^2", "\u00b3": "^3", "\u03c0": "pi", "\u221a": "sqrt",
    "[": "(", "]": ")", "{": "(", "}": ")",
})


def _clean(text: str) -> str:
    return unicodedata.normalize("NFKC", text.translate(_CHAR_MAP)).strip()


def _join_names(names) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


# ---------------------------------------------------------------------------------------------------------
# Numeric answers: read exactly as Fractions so that tolerance edges are exact

_DECIMAL = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+"  # optional thousands separators: 12,345.5
_NUMBER_RE = re.compile(rf"([+-]?)({_DECIMAL})(?:[eE]([+-]?\d+))?")
_FRACTION_RE = re.compile(rf"([+-]?)({_DECIMAL})\s*/\s*({_DECIMAL})")
_MIXED_RE = re.compile(r"([+-]?)(\d+)\s+(\d+)\s*/\s*(\d+)")  # 3 1/2
_NAME_PREFIX_RE = re.compile(r"[A-Za-z]+\s*=\s*")  # "x = 7"


def _decimal(text: str) -> Fraction:
    return Fraction(text.replace(",", ""))


def _read_number(raw: str, percent: bool = False) -> Fraction:
    text = _clean(raw)
    prefix = _NAME_PREFIX_RE.match(text)
    if prefix:
        text = text[prefix.end():]
    scale = Fraction(1)
    if text.endswith("%"):
        if not percent:
            raise AnswerFormatError("Enter the number without a % sign.")
        text, scale = text[:-1].rstrip(), Fraction(1, 100)
    if m := _MIXED_RE.fullmatch(text):
        denominator = int(m[4])
        if denominator == 0:
            raise AnswerFormatError("You can't divide by zero.")
        value = int(m[2]) + Fraction(int(m[3]), denominator)
    elif m := _FRACTION_RE.fullmatch(text):
        denominator = _decimal(m[3])
        if denominator == 0:
            raise AnswerFormatError("You can't divide by zero.")
        value = _decimal(m[2]) / denominator
    elif m := _NUMBER_RE.fullmatch(text):
        exponent = int(m[3] or 0)
        if abs(exponent) > MAX_EXPONENT:
            raise AnswerFormatError("That number is too large to work with.")
        value = _decimal(m[2]) * Fraction(10) ** exponent
    elif re.search(r"\d,\d", text):
        raise AnswerFormatError("Use a point for decimals (1.5); commas may only group thousands (1,000).")
    else:
        raise AnswerFormatError("Enter a number, such as 3.5 or 7/2.")
    return (-value if m[1] == "-" else value) * scale


def spec_number(value, percent: bool = False) -> Fraction:
    """A number from a spec: ints exactly, floats through repr (0.1 -> 1/10), strings like learner input."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, int):
        return Fraction(value)
    try:
        return _read_number(repr(value) if isinstance(value, float) else value, percent)
    except AnswerFormatError:
        raise ValueError(f"{value!r} is not a number") from None


def _grade_numeric(spec: dict, raw: str) -> Grade:
    percent = bool(spec.get("percent"))
    answer = _read_number(raw, percent)
    value = spec_number(spec["value"], percent)
    allowed = spec_number(spec.get("tolerance") or 0) + spec_number(
        spec.get("relative_tolerance") or 0) * abs(value)
    return _verdict(abs(answer - value) <= allowed, str(answer))


def _validate_numeric(spec: dict) -> list[str]:
    problems = []
    if spec.get("value") is None:
        problems.append("numeric value missing")
    else:
        try:
            spec_number(spec["value"], bool(spec.get("percent")))
        except ValueError:
            problems.append(f"numeric value {spec['value']!r} is not a number")
    for field in ("tolerance", "relative_tolerance"):
        if spec.get(field) is None:
            continue
        try:
            if spec_number(spec[field]) < 0:
                problems.append(f"numeric {field} {spec[field]!r} is negative")
        except ValueError:
            problems.append(f"numeric {field} must be a number >= 0, not {spec[field]!r}")
    if spec.get("percent") is not None and not isinstance(spec["percent"], bool):
        problems.append(f"numeric percent must be true or false, not {spec['percent']!r}")
    return problems


# ---------------------------------------------------------------------------------------------------------
# Expressions: tokenizer

_FUNCTIONS = {
    "sqrt": sympy.sqrt, "abs": sympy.Abs, "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan,
    "log": sympy.log, "ln": sympy.log, "exp": sympy.exp,
}
_CONSTANTS = {"pi": sympy.pi, "e": sympy.E}
_ALLOWED_CHARS = set("0123456789+-*/^().,= abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_TOKEN_RE = re.compile(r"\s*(?:(\d+\.?\d*|\.\d+)|([A-Za-z]+)|(\*\*|[-+*/^()=,]))")


@dataclass(frozen=True)
class _Token:
    kind: str  # num, var, unknown, const, func, op
    text: str


def _split_letters(word: str, variables: frozenset | None) -> list[_Token]:
    """Split a run of letters ("2xy", "sinx", "pi") into names, longest match first. With
    ``variables=None`` (reading a spec's value without declared variables) every other letter is a variable;
    otherwise a run with a letter that is not declared is one 'unknown' word ("y", "system")."""
    names = [(name, "var") for name in variables or ()]
    names += [(name, "func") for name in _FUNCTIONS] + [(name, "const") for name in _CONSTANTS]
    names.sort(key=lambda n: -len(n[0]))  # stable: a declared variable wins over a same-length name
    tokens, i = [], 0
    while i < len(word):
        for name, kind in names:
            piece = word[i:i + len(name)]
            # Function names are read in any case ("Sin"); single letters are case-sensitive.
            if piece == name or (kind != "var" and len(name) > 1 and piece.lower() == name):
                tokens.append(_Token(kind, name))
                i += len(name)
                break
        else:
            if variables is not None:
                return [_Token("unknown", word)]
            tokens.append(_Token("var", word[i]))
            i += 1
    return tokens


def _tokenize(text: str, variables: frozenset | None) -> list[_Token]:
    for char in text:
        if char not in _ALLOWED_CHARS:
            raise AnswerFormatError(f"Your answer contains '{char}', which can't be used here.")
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            break
        if depth > MAX_BRACKET_DEPTH:
            raise AnswerFormatError("Your answer has too many brackets inside each other.")
    if depth != 0:
        raise AnswerFormatError("The brackets in your expression don't match.")
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m:
            rest = text[pos:].lstrip()
            if not rest:
                break
            if rest[0] == ".":
                raise AnswerFormatError("Your answer has a '.' that isn't part of a number.")
            raise AnswerFormatError(f"I couldn't read your answer near '{rest[:10]}'.")
        number, word, op = m.groups()
        if number and text.startswith(".", m.end()):
            raise AnswerFormatError(f"Check the decimal point in {number}.")
        if number:
            tokens.append(_Token("num", number))
        elif word:
            tokens.extend(_split_letters(word, variables))
        else:
            tokens.append(_Token("op", "^" if op == "**" else op))
        pos = m.end()
    return tokens


# ---------------------------------------------------------------------------------------------------------
# Expressions: parser (recursive descent, building sympy objects)
#
#   equation := expr ["=" expr]
#   expr     := ["+"|"-"] term (("+"|"-") term)*
#   term     := unary (("*"|"/"|implicit) unary)*      2x, 2(x+1), x(x+1), (x+1)(x-1), 2sin(x)
#   unary    := ("+"|"-") unary | power                -x^2 is -(x^2)
#   power    := atom ["^" unary]                       right-associative: 2^3^2 is 2^9
#   atom     := number | name | func "(" expr ")" | "(" expr ")"


@dataclass(frozen=True, eq=False)
class _Node:
    """A piece of the expression as it was written, before sympy's automatic evaluation (which turns
    3x + 5x into 8x and 3(x + 4) into 3x + 12): what the answer-form checks look at.

    ``kind`` is num, var, const, func, group (brackets), sum, product, neg or power. A sum's and a
    product's ``args`` are (operator, child) pairs: "+"/"-" for a sum, "*" (also implicit) or "/" for a
    product, the first child always with "+" or "*". Otherwise ``args`` are the children: neg (x), power
    (base, exponent), group (inside), func (its bracketed argument). ``value`` is the sympy object the
    parser built for this piece; ``name`` is the variable, constant or function name."""
    kind: str
    value: sympy.Expr
    args: tuple = ()
    name: str = ""


@dataclass(frozen=True)
class _Parsed:
    lhs: sympy.Expr
    rhs: sympy.Expr | None  # None unless it is an equation
    unknown: tuple[str, ...]  # words that are not declared variables, in order of appearance
    lhs_tree: _Node  # how each side was written
    rhs_tree: _Node | None

    def __str__(self) -> str:
        return sympy.sstr(self.lhs) + ("" if self.rhs is None else " = " + sympy.sstr(self.rhs))


class _Parser:
    def __init__(self, tokens: list[_Token]):
        self.tokens = tokens
        self.pos = 0
        self.unknown: dict[str, None] = {}

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise AnswerFormatError("Your answer seems to be unfinished.")
        self.pos += 1
        return token

    def at_op(self, *ops: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "op" and token.text in ops

    def parse(self) -> _Parsed:
        if not self.tokens:
            raise AnswerFormatError("Enter an answer.")
        lhs, rhs = self.expr(), None
        if self.at_op("="):
            self.pos += 1
            rhs = self.expr()
            if self.at_op("="):
                raise AnswerFormatError("Use only one '=' in your answer.")
        if self.peek() is not None:
            token = self.peek()
            if token.text == ",":
                raise AnswerFormatError("Leave out the comma; commas can't be used in an expression.")
            raise AnswerFormatError(f"I couldn't read your answer near '{token.text}'.")
        return _Parsed(lhs.value, None if rhs is None else rhs.value, tuple(self.unknown), lhs, rhs)

    def expr(self) -> _Node:
        first = self.term()
        terms, value = [("+", first)], first.value
        while self.at_op("+", "-"):
            op = self.take().text
            right = self.term()
            value = value + right.value if op == "+" else value - right.value
            terms.append((op, right))
        return first if len(terms) == 1 else _Node("sum", value, tuple(terms))

    def term(self) -> _Node:
        first = self.unary()
        factors, value = [("*", first)], first.value
        while True:
            token = self.peek()
            if token is None:
                break
            if token.kind == "op" and token.text in "*/":
                self.pos += 1
                right = self.unary()
                factor = right.value
                if token.text == "/":
                    if factor == 0:
                        raise AnswerFormatError("You can't divide by zero.")
                    factor = _power(factor, sympy.Integer(-1))
                value = value * factor
                factors.append((token.text, right))
            elif token.kind == "num":
                # "x2", "(x+1)2", "2 3": ambiguous, so ask rather than guess.
                raise AnswerFormatError(
                    f"Put an operator (such as * or ^) before the number {token.text}: "
                    "write 2x for 2 times x, and x^2 for x squared.")
            elif token.kind != "op" or token.text == "(":
                right = self.unary()  # implicit multiplication
                value = value * right.value
                factors.append(("*", right))
            else:
                break
        return first if len(factors) == 1 else _Node("product", value, tuple(factors))

    def unary(self) -> _Node:
        if self.at_op("-"):
            self.pos += 1
            inner = self.unary()
            return _Node("neg", -inner.value, (inner,))
        if self.at_op("+"):
            self.pos += 1
            return self.unary()
        return self.power()

    def power(self) -> _Node:
        base = self.atom()
        if self.at_op("^"):
            self.pos += 1
            exponent = self.unary()
            return _Node("power", _power(base.value, exponent.value), (base, exponent))
        return base

    def atom(self) -> _Node:
        token = self.take()
        if token.kind == "num":
            value = Fraction(token.text)
            return _Node("num", sympy.Rational(value.numerator, value.denominator))
        if token.kind in ("var", "unknown"):
            if token.kind == "unknown":
                self.unknown[token.text] = None
            return _Node("var", sympy.Symbol(token.text, real=True), name=token.text)
        if token.kind == "const":
            return _Node("const", _CONSTANTS[token.text], name=token.text)
        if token.kind == "func":
            if not self.at_op("("):
                name = token.text
                raise AnswerFormatError(f"Put brackets around what {name} applies to, like {name}(x).")
            argument = self.atom()
            return _Node("func", _apply(token.text, argument.value), (argument,), token.text)
        if token.text == "(":
            inner = self.expr()
            if not self.at_op(")"):
                raise AnswerFormatError("The brackets in your expression don't match.")
            self.pos += 1
            return _Node("group", inner.value, (inner,))
        if token.text == ",":
            raise AnswerFormatError("Leave out the comma; commas can't be used in an expression.")
        raise AnswerFormatError(f"I couldn't read your answer near '{token.text}'.")


def _power(base: sympy.Expr, exponent: sympy.Expr) -> sympy.Expr:
    """base^exponent, refusing what would make sympy (or the numeric check) work for too long."""
    if exponent.free_symbols:
        if _tower_height(exponent) >= 2:
            raise AnswerFormatError("The powers in your answer are nested too deeply.")
    else:
        size = _magnitude(exponent)
        if size is None or size > MAX_EXPONENT:
            raise AnswerFormatError(f"That exponent is too large; exponents can be at most {MAX_EXPONENT}.")
        if base.is_Rational and exponent.is_Rational:
            bits = abs(base.p).bit_length() + base.q.bit_length() - 1
            if not exponent.is_Integer and bits > MAX_ROOT_BASE_BITS:
                raise AnswerFormatError("That number is too large to take a root of.")
            if bits * math.ceil(abs(exponent)) > MAX_NUMBER_BITS:
                raise AnswerFormatError("That number is too large to work with.")
    result = sympy.Pow(base, exponent)
    if result.has(sympy.zoo, sympy.nan):
        raise AnswerFormatError("You can't divide by zero.")
    return _bounded(result)


def _apply(name: str, argument: sympy.Expr) -> sympy.Expr:
    if name == "sqrt":
        return _power(argument, sympy.Rational(1, 2))
    if name == "exp" and argument.free_symbols and _tower_height(argument) >= 2:
        raise AnswerFormatError("The powers in your answer are nested too deeply.")
    result = _FUNCTIONS[name](argument)
    if result.has(sympy.zoo, sympy.nan):
        raise AnswerFormatError(f"{name} is not defined there.")
    return _bounded(result)


def _bounded(expr: sympy.Expr) -> sympy.Expr:
    """Refuse constants like exp(1000^pi): sympy evaluates constants numerically when it sorts or prints
    them, and for cos(exp(1000^pi)) that would take forever."""
    if not expr.free_symbols and not expr.is_Rational and _magnitude(expr) is None:
        raise AnswerFormatError("That number is too large to work with.")
    return expr


def _tower_height(expr: sympy.Expr) -> int:
    """How many powers with a variable exponent are stacked: x^2 -> 0, 2^x -> 1, 2^(2^x) -> 2."""
    if isinstance(expr, sympy.Pow) and expr.exp.free_symbols:
        return max(_tower_height(expr.base), 1 + _tower_height(expr.exp))
    if isinstance(expr, sympy.exp):
        return 1 + _tower_height(expr.args[0])
    return max((_tower_height(arg) for arg in expr.args), default=0)


def parse_expression(text: str, variables: frozenset | None) -> _Parsed:
    """A learner's expression or equation read by our parser (never eval); AnswerFormatError if unreadable."""
    return _Parser(_tokenize(_clean(text), variables)).parse()


# ---------------------------------------------------------------------------------------------------------
# Expressions: numeric evaluation with mpmath, bounded so that it cannot run away

_MP = mpmath.MPContext()  # a private context: changing the precision of mpmath.mp is not thread-safe
_MP.dps = 30
_MAX_LOG_MAGNITUDE = 2500  # values beyond e^2500 (or below e^-2500) count as undefined
_MP_FUNCTIONS = {
    sympy.sin: _MP.sin, sympy.cos: _MP.cos, sympy.tan: _MP.tan, sympy.log: _MP.log,
    sympy.exp: _MP.exp, sympy.Abs: abs,
}
_POINTS = 12  # points tried per comparison
_MIN_POINTS = 3  # points where both sides must be defined before calling them equivalent
_SEED = 20240611


class _Undefined(Exception):
    """The expression has no usable value at this point (division by zero, overflow, ...)."""


def _evaluate(expr: sympy.Expr, point: dict):
    if expr.is_Symbol:
        return point[expr]
    if expr.is_Rational:
        return _MP.mpf(expr.p) / expr.q
    if expr is sympy.pi:
        return _MP.pi
    if expr is sympy.E:
        return _MP.e
    if expr is sympy.I:
        return _MP.mpc(0, 1)
    args = [_evaluate(arg, point) for arg in expr.args]
    if expr.is_Add:
        value = _MP.fsum(args)
    elif expr.is_Mul:
        value = _MP.fprod(args)
    elif expr.is_Pow:
        base, exponent = args
        if base == 0:
            if _MP.re(exponent) <= 0:
                raise _Undefined
            return _MP.mpf(0)
        if _MP.re(exponent * _MP.log(base)) > _MAX_LOG_MAGNITUDE:
            raise _Undefined
        value = _MP.power(base, exponent)
    elif expr.func in _MP_FUNCTIONS:
        (arg,) = args
        if expr.func is sympy.exp and _MP.re(arg) > _MAX_LOG_MAGNITUDE:
            raise _Undefined
        if expr.func is sympy.log and arg == 0:
            raise _Undefined
        value = _MP_FUNCTIONS[expr.func](arg)
    else:  # something our parser does not produce
        raise _Undefined
    if not _MP.isfinite(value) or (value != 0 and abs(_MP.log(abs(value))) > _MAX_LOG_MAGNITUDE):
        raise _Undefined
    return value


def _magnitude(constant: sympy.Expr) -> float | None:
    try:
        return float(abs(_evaluate(constant, {})))
    except _Undefined:
        return None


def _points(symbols: list) -> list[dict]:
    """Fixed pseudo-random points: all variables positive at the first four (where log and sqrt are real),
    all negative at the next two (so that sqrt(x^2) and x differ), mixed signs after that. Values are short
    decimals away from 0 and +-1."""
    rng = random.Random(_SEED)
    points = []
    for i in range(_POINTS):
        point = {}
        for symbol in symbols:
            sign = 1 if i < 4 else -1 if i < 6 else rng.choice((1, -1))
            point[symbol] = _MP.mpf(sign * round(rng.uniform(0.3, 2.7), 4))
        points.append(point)
    return points


def _close(a, b) -> bool:
    return abs(a - b) <= _MP.mpf("1e-12") * max(abs(a), abs(b), _MP.mpf("1e-3"))


def _real(value) -> bool:
    return abs(_MP.im(value)) <= _MP.mpf("1e-20") * max(abs(value), 1)


def _values(f: sympy.Expr, g: sympy.Expr) -> list[tuple]:
    """(f, g) at the points where both are defined and real. Points where either is not real are left out,
    so that log(x^3) and 3 log(x) agree (they do wherever they are real) while sqrt(x^2) and x do not."""
    symbols = sorted(f.free_symbols | g.free_symbols, key=lambda s: s.name)
    pairs = []
    for point in _points(symbols):
        try:
            pair = (_evaluate(f, point), _evaluate(g, point))
        except (_Undefined, ZeroDivisionError, ValueError):
            continue
        if _real(pair[0]) and _real(pair[1]):
            pairs.append(pair)
    return pairs


def _small(expr: sympy.Expr) -> bool:
    """Whether sympy's cancel is sure to be quick: few nodes and low powers."""
    nodes = list(sympy.preorder_traversal(expr))
    limit = 12 if len(expr.free_symbols) <= 2 else 6
    # Numbers anywhere in an exponent count: cancel splits a^(x - 1000) into a^x * a^-1000 and expands.
    exponent_numbers = [r for n in nodes if n.is_Pow for r in n.exp.atoms(sympy.Rational)]
    return len(nodes) <= 80 and all(abs(r.p) <= limit and r.q <= limit for r in exponent_numbers)


def _cancel(expr: sympy.Expr) -> sympy.Expr | None:
    try:
        return sympy.cancel(expr)
    except (sympy.PolynomialError, TypeError, ValueError):  # the numeric check decides instead
        return None


def equivalent(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Equal as expressions: by sympy's cancel when small, else by values at fixed random points."""
    difference = a - b
    if difference == 0 or (_small(difference) and _cancel(difference) == 0):
        return True
    pairs = _values(a, b)
    return len(pairs) >= _MIN_POINTS and all(_close(x, y) for x, y in pairs)


def _proportional(f: sympy.Expr, g: sympy.Expr) -> bool:
    """f = k*g for a nonzero constant k: the equations f = 0 and g = 0 are the same."""
    if f == 0 or g == 0:
        return f == g
    if _small(f) and _small(g):
        ratio = _cancel(f / g)
        if ratio is not None and not ratio.free_symbols and ratio.is_finite and ratio != 0:
            return True
    pairs = _values(f, g)
    if len(pairs) < _MIN_POINTS:
        return False
    f_ref, g_ref = max(pairs, key=lambda pair: abs(pair[1]))
    if _close(g_ref, 0) or _close(f_ref, 0):
        return False
    k = f_ref / g_ref
    return all(_close(x, k * y) for x, y in pairs)


# ---------------------------------------------------------------------------------------------------------
# Expressions: answer forms (simplified, expanded, factored), judged on the answer as written
#
# sympy has already turned 3x + 5x into 8x by the time an answer is compared, so these checks read the
# parse tree (_Node) instead. Each check raises _NotInForm with what is missing; the learner sees
# "That is equal, but not <label> yet: <hint>." and nothing of the answer itself.

FORMS = ("simplified", "expanded", "factored")

_LIKE_TERMS = ("simplified", "combine like terms")
_NUMBERS = ("simplified", "work out the numbers")
_BRACKETS = ("simplified", "leave out the brackets that aren't needed")
_COLLECT = ("simplified", "multiply out the brackets and combine like terms")
_POWERS = ("simplified", "work out the powers")
_EXPAND = ("expanded", "multiply out the brackets")
_PRODUCT = ("factored", "write it as a product")
_FURTHER = ("fully factored", "a factor can still be factored further")

_MAX_FACTOR_DEGREE = 12  # irreducibility is only checked for small polynomials (sympy.factor_list)
_MAX_FACTOR_SYMBOLS = 3
_MAX_FACTOR_COEFFICIENT_BITS = 64


class _NotInForm(Exception):
    def __init__(self, reason: tuple[str, str]):
        super().__init__(reason)
        self.reason = reason


def _children(node: _Node) -> list[_Node]:
    return [child for _, child in node.args] if node.kind in ("sum", "product") else list(node.args)


def _unsigned(node: _Node) -> _Node:
    while node.kind == "neg":
        node = node.args[0]
    return node


def _inside(node: _Node) -> _Node:
    """What a group holds, through nested brackets; other nodes as they are."""
    while node.kind == "group":
        node = node.args[0]
    return node


def _is_bracketed_sum(node: _Node) -> bool:
    return node.kind == "group" and _inside(node).kind == "sum"


def _is_number(node: _Node) -> bool:
    """A number as it could be written in the answer: 7, -7."""
    return _unsigned(node).kind == "num"


def _size(node: _Node) -> int:
    """Number literals plus variable (and constant) occurrences: 3x + 5x is 4, 8x is 2."""
    return int(node.kind in ("num", "var", "const")) + sum(_size(child) for child in _children(node))


def _check_numbers(numerators: list, denominators: list) -> None:
    """At most one number multiplied and one divided by, and then a fraction in lowest terms: 3x, x/2,
    3x/4 and (1/2)x are fine, 2*4x, 6x/2, x/1 and 0.5x/2 are not."""
    if len(numerators) > 1 or len(denominators) > 1:
        raise _NotInForm(_NUMBERS)
    if denominators:
        q = denominators[0]
        p = numerators[0] if numerators else sympy.Integer(1)
        if not (p.is_Integer and q.is_Integer) or q == 1 or math.gcd(int(p), int(q)) != 1:
            raise _NotInForm(_NUMBERS)


def _check_simplified(node: _Node) -> None:
    """A single term, or a sum of terms none of which are like terms (same variable part), with at most
    one constant, no zero terms and no brackets around a term."""
    if _unsigned(node).kind == "group":  # (8x), -(x - 14): the brackets can go
        raise _NotInForm(_BRACKETS)
    if node.kind != "sum":
        _term_key(node, in_sum=False)
        return
    seen = set()
    for _, term in node.args:
        term = _unsigned(term)
        if term.kind == "group":  # x + (x + 1), 10 - (x - 4): the brackets can go
            raise _NotInForm(_BRACKETS)
        key = _term_key(term, in_sum=True)
        if key in seen:
            raise _NotInForm(_NUMBERS if key == () else _LIKE_TERMS)
        seen.add(key)


def _check_inside(group: _Node) -> None:
    """The argument of a function or a bracketed exponent must be simplified itself."""
    _check_simplified(_inside(group))


def _function_key(node: _Node) -> str:
    _check_inside(node.args[0])
    if node.value.is_Rational:  # sqrt(4), abs(-3)
        raise _NotInForm(_NUMBERS)
    return sympy.sstr(node.value)


def _term_key(term: _Node, in_sum: bool) -> tuple:
    """Check one term (a product of a number, letters, powers, functions and, standing alone, bracketed
    sums) and return its variable part, e.g. (('x', '2'), ('y', '1')) for 3x^2 y; () for a constant."""
    numerators, denominators, atoms = [], [], {}
    brackets = multiplied = False  # a bracketed sum anywhere; anything but a number multiplied

    def add(key: str, exponent) -> None:
        if key in atoms:  # x*x, x^2/x, 2x*3x
            raise _NotInForm(_LIKE_TERMS)
        atoms[key] = exponent

    def visit(node: _Node, divide: bool) -> None:
        nonlocal brackets, multiplied
        sign = -1 if divide else 1
        kind = node.kind
        multiplied = multiplied or not (divide or kind in ("num", "neg", "product", "group"))
        if kind == "neg":
            visit(node.args[0], divide)
        elif kind == "product":
            for op, child in node.args:
                visit(child, divide != (op == "/"))
        elif kind == "num":
            (denominators if divide else numerators).append(node.value)
        elif kind in ("var", "const"):
            add(node.name, sign)
        elif kind == "func":
            add(_function_key(node), sign)
        elif kind == "group":
            inner = _inside(node)
            if inner.kind == "sum":
                _check_simplified(inner)
                brackets = True
                multiplied = multiplied or not divide
            elif divide or (inner.kind == "product" and all(
                    child.kind == "num" for _, child in inner.args)):
                visit(inner, divide)  # x/(2y), (1/2)x
            else:
                raise _NotInForm(_BRACKETS)  # (2x)y, 2(-x)
        elif kind == "power":
            base, exponent = node.args
            if exponent.value.is_Rational:
                _check_inside(exponent)
                if base.kind == "num":
                    if exponent.value.is_Integer:  # 2^3
                        raise _NotInForm(_NUMBERS)
                    add(sympy.sstr(node.value), sign)
                elif base.kind in ("var", "const"):
                    add(base.name, sign * exponent.value)
                elif base.kind == "func":
                    add(_function_key(base), sign * exponent.value)
                elif _is_bracketed_sum(base):
                    _check_simplified(_inside(base))
                    brackets = True
                elif _inside(base).kind in ("var", "const", "func"):  # (x)^2
                    raise _NotInForm(_BRACKETS)
                else:  # (2x)^2, (-3)^2, (x^2)^3
                    raise _NotInForm(_POWERS if node.value.free_symbols else _NUMBERS)
            else:  # 2^x, e^(2x)
                if base.kind == "group":
                    _check_inside(base)
                _check_inside(exponent)
                add(sympy.sstr(node.value), sign)
        else:  # a sum is only ever inside brackets
            raise _NotInForm(_BRACKETS)

    visit(term, False)
    _check_numbers(numerators, denominators)
    if numerators == [1] and multiplied and not denominators:  # 1x, x*1 (but 1/x is fine)
        raise _NotInForm(_NUMBERS)
    if any(n == 0 for n in numerators) and (in_sum or atoms or brackets):  # x + 0, 0x
        raise _NotInForm(_NUMBERS)
    if in_sum and brackets:  # 3(x + 4) + 2x
        raise _NotInForm(_COLLECT)
    return tuple(sorted((key, str(exponent)) for key, exponent in atoms.items()))


def _check_expanded(node: _Node) -> None:
    """No bracketed sum multiplied by anything (3(x + 4), x(x + 2), (x + 4)/2, -(x + 4)) or raised to a
    power (x + 1)^2, anywhere."""
    if node.kind == "product":
        for op, child in node.args:
            others = [(o, c) for o, c in node.args if c is not child]
            if op == "*" and _is_bracketed_sum(child) and any(
                    o == "*" or _is_number(c) for o, c in others):
                raise _NotInForm(_EXPAND)
    elif node.kind == "power":
        base, exponent = node.args
        if _is_bracketed_sum(base) and exponent.value.is_Integer and exponent.value > 1:
            raise _NotInForm(_EXPAND)
    elif node.kind == "neg" and _is_bracketed_sum(node.args[0]):
        raise _NotInForm(_EXPAND)
    for child in _children(node):
        _check_expanded(child)


def _factors(node: _Node, divide: bool = False):
    """The factors of a product as (factor, divided?) pairs, through signs and brackets around products."""
    if node.kind == "neg":
        yield from _factors(node.args[0], divide)
    elif node.kind == "product":
        for op, child in node.args:
            yield from _factors(child, divide != (op == "/"))
    elif node.kind == "group" and _inside(node).kind != "sum":
        yield from _factors(_inside(node), divide)
    else:
        yield node, divide


def _check_irreducible(expr: sympy.Expr) -> None:
    """A polynomial factor must not factor further over the integers, a common number factor included
    (2x + 2 does); its sign does not matter. Factors that are not small polynomials are let through."""
    symbols = sorted(expr.free_symbols, key=lambda s: s.name)
    if not symbols or len(symbols) > _MAX_FACTOR_SYMBOLS:
        return
    try:
        poly = sympy.Poly(expr, *symbols)
    except (sympy.PolynomialError, sympy.GeneratorsError):
        return
    if not (poly.domain.is_ZZ or poly.domain.is_QQ) or poly.total_degree() > _MAX_FACTOR_DEGREE:
        return
    coefficients = [sympy.Rational(c) for c in poly.coeffs()]
    if any(max(abs(c.p), c.q).bit_length() > _MAX_FACTOR_COEFFICIENT_BITS for c in coefficients):
        return
    content, parts = sympy.factor_list(poly)
    if abs(content) != 1 or len(parts) != 1 or parts[0][1] != 1:
        raise _NotInForm(_FURTHER)


def _check_factored(node: _Node) -> None:
    """A product (or power) of factors: at most one number in front (a fraction is fine), then letters,
    powers and bracketed sums that are simplified and cannot be factored further."""
    node = _inside(_unsigned(_inside(node)))
    if node.kind == "sum":
        raise _NotInForm(_PRODUCT)
    numerators, denominators = [], []
    for factor, divide in _factors(node):
        if factor.kind == "num":
            (denominators if divide else numerators).append(factor.value)
            continue
        base, exponent = (factor.args if factor.kind == "power" else (factor, None))
        if base.kind == "num" and exponent is not None and exponent.value.is_Integer:
            raise _NotInForm(_NUMBERS)  # 2^3 (x + 1)
        if _is_bracketed_sum(base):
            _check_simplified(_inside(base))
            _check_irreducible(_inside(base).value)
    _check_numbers(numerators, denominators)


def _simplified_problem(parsed: _Parsed) -> tuple[str, str] | None:
    try:
        for side in (parsed.lhs_tree, parsed.rhs_tree):
            if side is not None:
                _check_simplified(side)
    except _NotInForm as exc:
        return exc.reason
    return None


def _form_problem(answer: _Parsed, form: str, target: _Parsed) -> tuple[str, str] | None:
    """Why ``answer`` is not in ``form`` as (label, hint), or None when it is. ``target`` is the spec's
    own value: when that is not simplified by these rules, any answer no longer than it counts as
    simplified (so the author's own form always passes)."""
    sides = [side for side in (answer.lhs_tree, answer.rhs_tree) if side is not None]
    try:
        for side in sides:
            if form == "factored":
                if not _is_number(side):  # x(x + 2) = 0
                    _check_factored(side)
            elif form == "expanded":
                _check_expanded(side)
    except _NotInForm as exc:
        return exc.reason
    if form == "factored":
        return None
    problem = _simplified_problem(answer)
    if problem and _simplified_problem(target) and _written_size(answer) <= _written_size(target):
        return None
    return problem


def _written_size(parsed: _Parsed) -> int:
    return sum(_size(side) for side in (parsed.lhs_tree, parsed.rhs_tree) if side is not None)


# ---------------------------------------------------------------------------------------------------------
# Expressions: grading and validation


def _spec_variables(spec: dict) -> frozenset:
    declared = spec.get("variables")
    if declared is not None:
        return frozenset(declared)
    parsed = parse_expression(spec["value"], None)
    symbols = parsed.lhs.free_symbols | (parsed.rhs.free_symbols if parsed.rhs is not None else set())
    return frozenset(s.name for s in symbols)


def _grade_expression(spec: dict, raw: str) -> Grade:
    variables = _spec_variables(spec)
    target = parse_expression(spec["value"], variables)
    answer = parse_expression(raw, variables)
    if target.rhs is not None and answer.rhs is None:
        raise AnswerFormatError("Enter an equation, with '='.")
    if target.rhs is None and answer.rhs is not None:
        raise AnswerFormatError("Enter just the expression, without '='.")
    if answer.unknown:
        about = (f"this question is about {_join_names(sorted(variables))}." if variables
                 else "the answer needs no letters.")
        return Grade(False, f"Your answer uses {_join_names(answer.unknown)}; {about}", str(answer))
    if target.rhs is None:
        correct = equivalent(answer.lhs, target.lhs)
    else:
        correct = _proportional(answer.lhs - answer.rhs, target.lhs - target.rhs)
    if correct and spec.get("form") is not None:
        problem = _form_problem(answer, spec["form"], target)
        if problem is not None:
            label, hint = problem
            return Grade(False, f"That is equal, but not {label} yet: {hint}.", str(answer))
    return _verdict(correct, str(answer))


def _validate_expression(spec: dict) -> list[str]:
    value, declared, form = spec.get("value"), spec.get("variables"), spec.get("form")
    problems = []
    if form is not None and (not isinstance(form, str) or form not in FORMS):
        problems.append(f"expression form must be simplified, expanded or factored, not {form!r}")
    if declared is not None:
        if not isinstance(declared, list) or not all(isinstance(v, str) for v in declared):
            problems.append(f"expression variables must be a list of names, not {declared!r}")
            declared = None
        else:
            for name in declared:
                if not re.fullmatch(r"[A-Za-z]+", name) or name.lower() in _FUNCTIONS or name == "pi":
                    problems.append(f"expression variable {name!r} must be letters and not a function name")
            if len(set(declared)) != len(declared):
                problems.append("expression variables are listed more than once")
    if value is None:
        return problems + ["expression value missing"]
    if not isinstance(value, str) or not value.strip():
        return problems + [f"expression value must be a non-empty string, not {value!r}"]
    try:
        parsed = parse_expression(value, frozenset(declared) if declared is not None else None)
    except AnswerFormatError as exc:
        return problems + [f"expression value {value!r} cannot be parsed: {exc}"]
    if parsed.unknown:
        names, verb = _join_names(parsed.unknown), "is" if len(parsed.unknown) == 1 else "are"
        problems.append(f"expression value {value!r} uses {names}, which {verb} not in variables")
    if parsed.rhs is not None and parsed.lhs - parsed.rhs == 0:
        problems.append(f"expression value {value!r} is an equation that always holds")
    if form is not None and form in FORMS and not parsed.unknown:
        problem = _form_problem(parsed, form, parsed)
        if problem is None and form != "factored" and _simplified_problem(parsed) not in (None, _COLLECT):
            # Only brackets kept inside a sum may be the author's deliberate form (x^2 + 1/(x + 1)); a value
            # like 3x + 5x would make the form accept the very answer it is meant to refuse.
            problem = _simplified_problem(parsed)
        if problem is not None:
            label, hint = problem
            problems.append(f"expression value {value!r} is not {label} ({hint}), but its form is {form!r}")
    return problems


# ---------------------------------------------------------------------------------------------------------
# Choices


def _match_choice(token: str, choices: list[str]) -> int | None:
    """A choice sent as its index ("1"), its letter ("B") or its text. Index and letter come first, since
    that is what the tutor's own form sends."""
    token = token.strip()
    if token.isascii() and token.isdigit() and int(token) < len(choices):
        return int(token)
    if len(token) == 1 and token.isascii() and token.isalpha() and ord(token.upper()) - 65 < len(choices):
        return ord(token.upper()) - 65
    wanted = _normalize_text(token, case_sensitive=False)
    for index, choice in enumerate(choices):
        if _normalize_text(choice, case_sensitive=False) == wanted:
            return index
    return None


def _grade_choice(spec: dict, raw: str) -> Grade:
    choices, correct = spec["choices"], spec["correct"]
    several = isinstance(correct, list)
    wanted = set(correct) if several else {correct}
    whole = _match_choice(raw, choices)  # a choice text may itself contain a comma
    if whole is not None:
        picked = {whole}
    elif several and "," in raw:
        parts = [_match_choice(part, choices) for part in raw.split(",")]
        if None in parts:
            raise AnswerFormatError("Pick one of the choices, or several separated by commas (such as A, C).")
        picked = set(parts)
    else:
        raise AnswerFormatError("Pick one of the choices.")
    normalized = ",".join(str(i) for i in sorted(picked))
    if several and picked < wanted:
        return Grade(False, "Right so far, but there is more to pick.", normalized)
    return _verdict(picked == wanted, normalized)


def _validate_choice(spec: dict) -> list[str]:
    choices, correct = spec.get("choices"), spec.get("correct")
    if choices is None:
        return ["choice choices missing"]
    if not isinstance(choices, list) or not choices:
        return ["choice choices must be a non-empty list of texts"]
    problems = [f"choice {i} must be a non-empty text, not {c!r}" for i, c in enumerate(choices)
                if not isinstance(c, str) or not c.strip()]
    if problems:
        return problems
    seen: dict[str, int] = {}
    for index, choice in enumerate(choices):
        key = _normalize_text(choice, case_sensitive=False)
        if key in seen:
            problems.append(f"choices {seen[key]} and {index} have the same text {choice!r}")
        seen.setdefault(key, index)
    if correct is None:
        return problems + ["choice 'correct' missing"]
    indices = correct if isinstance(correct, list) else [correct]
    if not indices:
        return problems + ["choice 'correct' must name at least one choice"]
    for index in indices:
        if isinstance(index, bool) or not isinstance(index, int):
            problems.append(f"choice 'correct' must be an index or a list of indices, not {index!r}")
        elif not 0 <= index < len(choices):
            problems.append(f"choice 'correct' index {index} out of range ({len(choices)} choices)")
    if len(set(map(repr, indices))) != len(indices):
        problems.append("choice 'correct' lists an index more than once")
    return problems


# ---------------------------------------------------------------------------------------------------------
# Text


def _normalize_text(text: str, case_sensitive: bool) -> str:
    text = " ".join(unicodedata.normalize("NFKC", text).split()).rstrip(".!, ")
    return text if case_sensitive else text.casefold()


def _accepted_texts(spec: dict) -> list[str]:
    value = spec["value"]
    return [value] if isinstance(value, str) else value


def _grade_text(spec: dict, raw: str) -> Grade:
    case_sensitive = bool(spec.get("case_sensitive"))
    answer = _normalize_text(raw, case_sensitive)
    if not answer:
        raise AnswerFormatError("Enter an answer.")
    accepted = {_normalize_text(t, case_sensitive) for t in _accepted_texts(spec)}
    if answer in accepted:
        return _verdict(True, answer)
    if case_sensitive and answer.casefold() in {t.casefold() for t in accepted}:
        return Grade(False, "Check your capital letters.", answer)
    return _verdict(False, answer)


def _validate_text(spec: dict) -> list[str]:
    value, problems = spec.get("value"), []
    if value is None:
        problems.append("text value missing")
    elif not isinstance(value, (str, list)) or (isinstance(value, list) and not value):
        problems.append(f"text value must be a text or a non-empty list of texts, not {value!r}")
    else:
        for text in [value] if isinstance(value, str) else value:
            if not isinstance(text, str) or not _normalize_text(text, False):
                problems.append(f"text value {text!r} must be a non-empty text")
    if spec.get("case_sensitive") is not None and not isinstance(spec["case_sensitive"], bool):
        problems.append(f"text case_sensitive must be true or false, not {spec['case_sensitive']!r}")
    return problems


_GRADERS = {"numeric": _grade_numeric, "expression": _grade_expression, "choice": _grade_choice,
            "text": _grade_text}
_VALIDATORS = {"numeric": _validate_numeric, "expression": _validate_expression, "choice": _validate_choice,
               "text": _validate_text}
