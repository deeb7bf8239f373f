"""Course packages (format ``tutor-course/1``): read, check, expand templates, write.

The contract is docs/course-format.md. ``read_package`` returns the normalised package as plain,
JSON-serialisable data; every problem found is collected and raised together as one ``PackageError``
so an author fixes a file in one pass. Pure Python (no Django): the importers, the management commands
and the tests all share it. Answer specs are checked by ``tutor.grading.validate_spec``, imported
lazily so this module loads on its own.
"""

import copy
import difflib
import hashlib
import io
import json
import os
import random
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

import sympy
import yaml
from sympy.parsing.sympy_parser import auto_number, convert_xor, rationalize, stringify_expr

from knowledge.graph import find_cycle

FORMAT_NAME = "tutor-course"
FORMAT_VERSION = 1
FORMAT = f"{FORMAT_NAME}/{FORMAT_VERSION}"

SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]*\Z")
MAX_SLUG_LENGTH = 100
DEFAULT_BKT = {"p_init": 0.2, "p_learn": 0.15, "p_guess": 0.2, "p_slip": 0.1, "p_forget": 0.0}
HINT_KINDS = ("hint", "scaffold", "bottom_out")
MAX_TEMPLATE_COUNT = 1000

TOP_KEYS = ("format", "course", "include", "skills", "items", "templates")
INCLUDED_KEYS = ("include", "skills", "items", "templates")
COURSE_KEYS = ("slug", "title", "description", "language")
SKILL_KEYS = ("slug", "name", "description", "requires", "bkt")
ITEM_KEYS = ("slug", "title", "body", "skills", "difficulty", "template", "source", "license", "steps")
STEP_KEYS = ("prompt", "answer", "skills", "hints")
HINT_KEYS = ("kind", "text", "answer")
TEMPLATE_KEYS = ("slug", "count", "seed", "vars", "where", "item")
VAR_KINDS = ("int", "choice", "expr")


@dataclass(frozen=True)
class PackageIssue:
    """One problem in a package: the file, the place in it, and what is wrong."""

    file: str
    where: str
    message: str

    def __str__(self):
        return f"{self.file}: {self.where}: {self.message}" if self.where else f"{self.file}: {self.message}"


class PackageError(Exception):
    """The package has problems; ``errors`` lists every ``PackageIssue`` found."""

    def __init__(self, errors):
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class _Issues:
    """Collects issues; ``add`` never raises, so checking goes on after the first problem."""

    def __init__(self):
        self.list = []

    def add(self, file, where, message):
        self.list.append(PackageIssue(str(file), where, message))


# ---------------------------------------------------------------- reading files

class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """Safe YAML that refuses duplicate keys and keeps look-alike scalars as text.

    Only ``true``/``false`` are booleans (``No`` as a text answer stays "No"), dates stay text, and
    ``3:4`` is not read as a base-60 integer: course text is full of such strings.
    """


def _mapping_without_duplicates(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}'", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


def _bool_or_text(loader, node):
    text = loader.construct_scalar(node)
    return {"true": True, "false": False}.get(text.lower(), text)


def _int_or_text(loader, node):
    text = loader.construct_scalar(node)
    return text if ":" in text else yaml.SafeLoader.construct_yaml_int(loader, node)


def _float_or_text(loader, node):
    text = loader.construct_scalar(node)
    return text if ":" in text else yaml.SafeLoader.construct_yaml_float(loader, node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)
_StrictLoader.add_constructor("tag:yaml.org,2002:bool", _bool_or_text)
_StrictLoader.add_constructor("tag:yaml.org,2002:int", _int_or_text)
_StrictLoader.add_constructor("tag:yaml.org,2002:float", _float_or_text)
_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_scalar)


def _load_file(path: Path, shown: str, issues: _Issues):
    """The file's top-level mapping, or None after reporting why it cannot be read."""
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        issues.add(shown, "", "unknown file type (expected .yaml, .yml or .json)")
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        issues.add(shown, "", "file not found")
        return None
    except (OSError, UnicodeDecodeError) as exc:
        issues.add(shown, "", f"cannot read the file: {exc}")
        return None
    return _parse_text(text, suffix, shown, issues)


def _parse_text(text: str, suffix: str, shown: str, issues: _Issues):
    """The top-level mapping of a package file's text, or None after reporting why it cannot be read."""
    try:
        data = json.loads(text) if suffix == ".json" else yaml.load(text, Loader=_StrictLoader)
    except json.JSONDecodeError as exc:
        issues.add(shown, f"line {exc.lineno}, column {exc.colno}", f"JSON syntax error: {exc.msg}")
        return None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        message = " ".join(part for part in (exc.context, exc.problem) if part)
        issues.add(shown, where, f"YAML syntax error: {message}")
        return None
    except yaml.YAMLError as exc:
        issues.add(shown, "", f"YAML syntax error: {exc}")
        return None
    if not isinstance(data, dict):
        issues.add(shown, "", "the file must hold a mapping (format, course, skills, items ...)")
        return None
    return data


def _read_files(path: Path, shown: str, issues: _Issues, stack: tuple, done: dict, out: list):
    """Append (shown name, data) for this file and, depth first, every file it includes."""
    key = path.resolve()
    data = _load_file(path, shown, issues)
    done[key] = shown
    if data is None:
        return
    out.append((shown, data))
    includes = data.get("include", [])
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        issues.add(shown, "include", "must be a list of file paths")
        return
    chain = (*stack, key)
    for include in includes:
        child = path.parent / include
        child_shown = os.path.normpath(os.path.join(os.path.dirname(shown), include))
        child_key = child.resolve()
        if child_key in chain:
            loop = [done[k] for k in chain[chain.index(child_key):]] + [child_shown]
            issues.add(shown, f"include '{include}'", "include loop: " + " -> ".join(loop))
        elif child_key in done:
            issues.add(shown, f"include '{include}'", f"already included as {done[child_key]}")
        elif not child.is_file():
            issues.add(shown, f"include '{include}'", f"file not found ({child_shown})")
        else:
            _read_files(child, child_shown, issues, chain, done, out)


# ---------------------------------------------------------------- small checks

def _unknown_keys(raw: dict, allowed, file, where, issues: _Issues):
    for key in raw:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(allowed)})"
            issues.add(file, where, f"unknown key '{key}'{hint}")


def _text(raw: dict, key, file, where, issues: _Issues, required=False, default=""):
    """A text field; numbers are not silently turned into text (quote them in YAML)."""
    value = raw.get(key)
    if value is None:
        if required:
            issues.add(file, where, f"missing '{key}'")
        return default
    if not isinstance(value, str):
        issues.add(file, where, f"'{key}' must be text, not {type(value).__name__}")
        return default
    if required and not value.strip():
        issues.add(file, where, f"'{key}' is empty")
    return value


def _slug_problem(slug):
    if not isinstance(slug, str):
        return f"slug must be text, not {type(slug).__name__}"
    if not SLUG_RE.match(slug):
        return f"bad slug '{slug}' (use lowercase letters, digits and '-', starting with a letter or digit)"
    if len(slug) > MAX_SLUG_LENGTH:
        return f"slug '{slug}' is longer than {MAX_SLUG_LENGTH} characters"
    return None


def _slug_list(raw: dict, key, file, where, issues: _Issues):
    value = raw.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        issues.add(file, where, f"'{key}' must be a list of slugs")
        return []
    slugs = []
    for slug in value:
        problem = _slug_problem(slug)
        if problem:
            issues.add(file, where, f"'{key}': {problem}")
        else:
            slugs.append(slug)
    return slugs


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _answer_problems(spec):
    """Messages about an answer spec ([] when it is valid)."""
    if not isinstance(spec, dict):
        return ["must be a mapping like {type: numeric, value: 7}"]
    from tutor.grading import validate_spec  # lazy: the grader is a separate module

    return list(validate_spec(spec))


def _list_of_mappings(data, key, file, issues: _Issues):
    entries = data.get(key, [])
    if entries is None:
        return []
    if not isinstance(entries, list):
        issues.add(file, key, "must be a list")
        return []
    good = []
    for index, entry in enumerate(entries, 1):
        if isinstance(entry, dict):
            good.append(entry)
        else:
            issues.add(file, f"{key} #{index}", "must be a mapping")
    return good


def _label(kind, raw: dict, index):
    slug = raw.get("slug")
    return f"{kind} '{slug}'" if isinstance(slug, str) and slug else f"{kind} #{index}"


# ---------------------------------------------------------------- course and skills

def _check_format(data: dict, file, issues: _Issues):
    value = data.get("format")
    if value is None:
        issues.add(file, "format", f"missing 'format' (expected {FORMAT})")
        return
    name, _, version = str(value).partition("/")
    if name != FORMAT_NAME:
        issues.add(file, "format", f"unknown format '{value}' (expected {FORMAT})")
    elif version != str(FORMAT_VERSION):
        issues.add(file, "format", f"unsupported version '{version}' of {FORMAT_NAME} "
                                   f"(this reader knows {FORMAT})")


def _course(data: dict, file, issues: _Issues):
    raw = data.get("course")
    if not isinstance(raw, dict):
        issues.add(file, "course", "missing 'course' mapping with slug and title")
        raw = {}
    _unknown_keys(raw, COURSE_KEYS, file, "course", issues)
    slug = raw.get("slug")
    if slug is None:
        issues.add(file, "course", "missing 'slug'")
    elif problem := _slug_problem(slug):
        issues.add(file, "course", problem)
    return {
        "slug": slug if isinstance(slug, str) else "",
        "title": _text(raw, "title", file, "course", issues, required=True),
        "description": _text(raw, "description", file, "course", issues),
        "language": _text(raw, "language", file, "course", issues, default="en") or "en",
    }


def _bkt(raw: dict, file, where, issues: _Issues):
    given = raw.get("bkt") or {}
    if not isinstance(given, dict):
        issues.add(file, where, "'bkt' must be a mapping like {p_init: 0.2, p_learn: 0.15}")
        return dict(DEFAULT_BKT)
    _unknown_keys(given, tuple(DEFAULT_BKT), file, f"{where} bkt", issues)
    bkt = {}
    for name, default in DEFAULT_BKT.items():
        value = given.get(name, default)
        if not _is_number(value):
            issues.add(file, f"{where} bkt", f"{name} must be a number, not {value!r}")
            value = default
        elif name == "p_forget" and not 0 <= value < 1:
            issues.add(file, f"{where} bkt", f"p_forget must be in [0, 1), not {value}")
        elif name != "p_forget" and not 0 < value < 1:
            issues.add(file, f"{where} bkt", f"{name} must be between 0 and 1 (exclusive), not {value}")
        elif name in ("p_guess", "p_slip") and value >= 0.5:
            issues.add(file, f"{where} bkt", f"{name} must be below 0.5, not {value}")
        bkt[name] = float(value)
    return bkt


def _skill(raw: dict, index, file, issues: _Issues):
    where = _label("skill", raw, index)
    _unknown_keys(raw, SKILL_KEYS, file, where, issues)
    slug = raw.get("slug")
    if slug is None:
        issues.add(file, where, "missing 'slug'")
    elif problem := _slug_problem(slug):
        issues.add(file, where, problem)
        slug = None
    return {
        "slug": slug,
        "name": _text(raw, "name", file, where, issues, required=True),
        "description": _text(raw, "description", file, where, issues),
        "requires": _slug_list(raw, "requires", file, where, issues),
        "bkt": _bkt(raw, file, where, issues),
    }


def _check_prerequisites(skills: list, files: dict, issues: _Issues):
    known = {s["slug"] for s in skills}
    for skill in skills:
        for required in skill["requires"]:
            if required not in known:
                issues.add(files[skill["slug"]], f"skill '{skill['slug']}'",
                           f"requires unknown skill '{required}'")
    # Arrows read "requires", like the YAML: a -> b means a requires b.
    edges = [(s["slug"], r) for s in skills for r in s["requires"] if r in known]
    cycle = find_cycle([s["slug"] for s in skills], edges)
    if cycle:
        issues.add(files[cycle[0]], f"skill '{cycle[0]}'", "prerequisite cycle: " + " -> ".join(cycle))


# ---------------------------------------------------------------- items, steps, hints

def _item(raw: dict, where, file, skill_slugs: set, issues: _Issues):
    _unknown_keys(raw, ITEM_KEYS, file, where, issues)
    slug = raw.get("slug")
    if slug is None:
        issues.add(file, where, "missing 'slug'")
    elif problem := _slug_problem(slug):
        issues.add(file, where, problem)
        slug = None
    skills = _known_skills(raw, file, where, skill_slugs, issues)
    if "skills" not in raw:
        issues.add(file, where, "missing 'skills' (at least one skill slug)")
    elif not raw["skills"]:
        issues.add(file, where, "'skills' is empty (name at least one skill)")
    difficulty = raw.get("difficulty")
    if difficulty is not None and not (_is_number(difficulty) and 0 <= difficulty <= 1):
        issues.add(file, where, f"difficulty must be a number from 0 to 1, not {difficulty!r}")
        difficulty = None
    template = raw.get("template")
    if template is not None and not isinstance(template, str):
        issues.add(file, where, "'template' must be the slug of the template the item came from")
        template = None
    steps = []
    raw_steps = raw.get("steps")
    if raw_steps is None:
        issues.add(file, where, "missing 'steps' (at least one step)")
    elif not isinstance(raw_steps, list) or not raw_steps:
        issues.add(file, where, "'steps' must be a non-empty list of steps")
    else:
        for number, raw_step in enumerate(raw_steps, 1):
            if isinstance(raw_step, dict):
                steps.append(_step(raw_step, f"{where} step {number}", file, skills, skill_slugs, issues))
            else:
                issues.add(file, f"{where} step {number}", "must be a mapping with prompt and answer")
    return {
        "slug": slug,
        "title": _text(raw, "title", file, where, issues, required=True),
        "body": _text(raw, "body", file, where, issues),
        "skills": skills,
        "difficulty": None if difficulty is None else float(difficulty),
        "template": template,
        "source": _text(raw, "source", file, where, issues),
        "license": _text(raw, "license", file, where, issues),
        "steps": steps,
    }


def _known_skills(raw: dict, file, where, skill_slugs: set, issues: _Issues):
    slugs = _slug_list(raw, "skills", file, where, issues)
    for slug in slugs:
        if slug not in skill_slugs:
            issues.add(file, where, f"unknown skill '{slug}'")
    return slugs


def _step(raw: dict, where, file, item_skills, skill_slugs: set, issues: _Issues):
    _unknown_keys(raw, STEP_KEYS, file, where, issues)
    prompt = _text(raw, "prompt", file, where, issues, required=True)
    answer = raw.get("answer")
    if answer is None:
        issues.add(file, where, "missing 'answer'")
    else:
        for message in _answer_problems(answer):
            issues.add(file, f"{where} answer", message)
    skills = _known_skills(raw, file, where, skill_slugs, issues) if "skills" in raw else list(item_skills)
    hints = []
    raw_hints = raw.get("hints") or []
    if not isinstance(raw_hints, list):
        issues.add(file, where, "'hints' must be a list of rungs")
        raw_hints = []
    for number, raw_hint in enumerate(raw_hints, 1):
        hint_where = f"{where} hint {number}"
        if isinstance(raw_hint, dict):
            hints.append(_hint(raw_hint, hint_where, file, issues))
        else:
            issues.add(file, hint_where, "must be a mapping like {kind: hint, text: ...}")
    bottom_outs = [n for n, h in enumerate(hints, 1) if h["kind"] == "bottom_out"]
    if len(bottom_outs) > 1:
        issues.add(file, where, f"more than one bottom_out (hints {', '.join(map(str, bottom_outs))})")
    elif bottom_outs and bottom_outs[0] != len(hints):
        issues.add(file, f"{where} hint {bottom_outs[0]}", "bottom_out must be the last rung")
    return {"prompt": prompt, "answer": copy.deepcopy(answer), "skills": skills, "hints": hints}


def step_problems(step: dict) -> list[str]:
    """What is wrong with one step ({prompt, answer, hints}) as an author edits it: the answer spec and the
    hint ladder are checked as a package's would be."""
    issues = _Issues()
    _step({k: v for k, v in step.items() if k in ("prompt", "answer", "hints")}, "step", "", [], set(), issues)
    return [f"{issue.where}: {issue.message}" for issue in issues.list]


def _hint(raw: dict, where, file, issues: _Issues):
    _unknown_keys(raw, HINT_KEYS, file, where, issues)
    kind = raw.get("kind")
    if kind is None:
        issues.add(file, where, f"missing 'kind' ({', '.join(HINT_KINDS)})")
    elif kind not in HINT_KINDS:
        issues.add(file, where, f"unknown kind '{kind}' (use {', '.join(HINT_KINDS)})")
    hint = {"kind": kind, "text": _text(raw, "text", file, where, issues, required=True)}
    if kind == "scaffold":
        if raw.get("answer") is None:
            issues.add(file, where, "scaffold needs an 'answer'")
        else:
            for message in _answer_problems(raw["answer"]):
                issues.add(file, f"{where} answer", message)
        hint["answer"] = copy.deepcopy(raw.get("answer"))
    elif "answer" in raw:
        issues.add(file, where, f"only a scaffold has an 'answer', not a {kind}")
    return hint


# ---------------------------------------------------------------- templates

# Template arithmetic goes through sympy's parser with a closed vocabulary: the tokens are checked first
# (numbers, operators, the template's variables and these functions), and evaluation sees no builtins.
_FUNCTIONS = {"abs": sympy.Abs, "min": sympy.Min, "max": sympy.Max, "gcd": sympy.gcd, "lcm": sympy.lcm,
              "sqrt": sympy.sqrt, "floor": sympy.floor, "ceiling": sympy.ceiling}
_GLOBALS = {"Integer": sympy.Integer, "Rational": sympy.Rational, "Float": sympy.Float, **_FUNCTIONS}
_TRANSFORMS = (auto_number, rationalize, convert_xor)  # exact numbers; ^ means power
_OPERATORS = {"+", "-", "*", "/", "//", "%", "**", "^", "(", ")", ",", "<", ">", "<=", ">=", "==", "!="}
_KEYWORDS = {"and", "or", "not"}
_PLACEHOLDER = re.compile(r"\[\[(.+?)\]\]", re.S)
_LATEX_FORM = re.compile(r"\s*latex\((.*)\)\s*\Z", re.S)
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class _TemplateProblem(Exception):
    pass


def _compile_expression(text: str, names: set, text_vars: set):
    """Compiled code for a template expression over ``names``; _TemplateProblem says what is wrong."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        raise _TemplateProblem(f"cannot read '{text}' (unbalanced brackets?)") from None
    for token in tokens:
        if token.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
            continue
        word = token.string
        if token.type == tokenize.NUMBER and not word.lower().endswith("j"):
            continue
        if token.type == tokenize.OP and word in _OPERATORS:
            continue
        if token.type == tokenize.NAME and (word in names or word in _FUNCTIONS or word in _KEYWORDS):
            continue
        if word in text_vars:
            raise _TemplateProblem(f"'{word}' is a text variable: use it alone, as [[{word}]]")
        if token.type == tokenize.NAME:
            known = ", ".join(sorted(names)) or "none"
            raise _TemplateProblem(f"unknown name '{word}' in '{text}' (variables: {known})")
        raise _TemplateProblem(f"'{word}' is not allowed in '{text}'")
    try:
        code = stringify_expr(text, {}, _GLOBALS, _TRANSFORMS)
        return compile(code, "<template>", "eval")
    except (SyntaxError, TypeError, ValueError, tokenize.TokenError):
        raise _TemplateProblem(f"cannot read '{text}' (write products with '*', e.g. 2*a)") from None


def _evaluate(code, values: dict):
    return eval(code, {"__builtins__": {}, **_GLOBALS}, dict(values))  # noqa: S307 - tokens checked


def _number(value):
    """A choice value as an exact sympy number, or None when it is text."""
    if _is_number(value):
        return sympy.Rational(str(value))
    if isinstance(value, str):
        try:
            return sympy.Rational(value.strip())
        except (TypeError, ValueError):
            return None
    return None


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _compile_var(name, spec, names: set, text_vars: set):
    """(kind, detail) for one variable; _TemplateProblem says what is wrong with it."""
    if not isinstance(name, str) or not _VAR_NAME.match(name) or name in _GLOBALS or name in _KEYWORDS:
        raise _TemplateProblem("a variable name is a letter, then letters, digits or '_' (not a function)")
    kinds = [k for k in VAR_KINDS if isinstance(spec, dict) and k in spec]
    if len(kinds) != 1:
        raise _TemplateProblem("must be one of {int: [lo, hi]}, {choice: [...]}, {expr: '...'}")
    kind, detail = kinds[0], spec[kinds[0]]
    extra = set(spec) - {kind, "exclude" if kind == "int" else kind}
    if extra:
        raise _TemplateProblem(f"unknown key '{sorted(extra)[0]}' next to '{kind}'")
    if kind == "int":
        if not (isinstance(detail, list) and len(detail) == 2 and all(map(_is_int, detail))
                and detail[0] <= detail[1]):
            raise _TemplateProblem("int needs [lo, hi], two integers with lo <= hi")
        exclude = spec.get("exclude", [])
        if not isinstance(exclude, list) or not all(map(_is_int, exclude)):
            raise _TemplateProblem("exclude must be a list of integers")
        lo, hi = detail
        if hi - lo + 1 <= len(exclude) and set(range(lo, hi + 1)) <= set(exclude):
            raise _TemplateProblem("exclude leaves no integer to draw")
        return "int", (lo, hi, set(exclude))
    if kind == "choice":
        if not isinstance(detail, list) or not detail:
            raise _TemplateProblem("choice needs a non-empty list of values")
        numbers = [_number(v) for v in detail]
        if all(n is not None for n in numbers):
            return "choice", numbers
        if all(isinstance(v, str) for v in detail):
            return "text", list(detail)  # usable only as [[name]]
        raise _TemplateProblem("choice values must be all numbers or all text")
    if not isinstance(detail, str):
        raise _TemplateProblem("expr must be text like 'a + b'")
    return "expr", _compile_expression(detail, names, text_vars)


def _draw(variables, rng: random.Random):
    """One set of values, or None when an integer hit 'exclude' or a derived value is undefined."""
    values = {}
    for name, kind, detail in variables:
        if kind == "int":
            lo, hi, exclude = detail
            value = rng.randint(lo, hi)
            if value in exclude:
                return None
            values[name] = sympy.Integer(value)
        elif kind in ("choice", "text"):
            values[name] = rng.choice(detail)
        else:
            value = _evaluate(detail, _numeric(values))
            if not isinstance(value, sympy.Expr) or not (value.is_real and value.is_finite):
                return None  # e.g. a division by zero or the root of a negative number: draw again
            values[name] = value
    return values


def _numeric(values: dict) -> dict:
    return {name: value for name, value in values.items() if not isinstance(value, str)}


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _substitute(node, render):
    if isinstance(node, str):
        return _PLACEHOLDER.sub(lambda m: render(m.group(1)), node)
    if isinstance(node, dict):
        return {key: _substitute(value, render) for key, value in node.items()}
    if isinstance(node, list):
        return [_substitute(value, render) for value in node]
    return node


def _template_settings(raw: dict, where):
    """(slug, count, seed, item) of a template; _TemplateProblem says what is wrong."""
    slug = raw.get("slug")
    if slug is None or _slug_problem(slug):
        raise _TemplateProblem(_slug_problem(slug) if slug is not None else "missing 'slug'")
    count = raw.get("count", 1)
    if not (_is_int(count) and 1 <= count <= MAX_TEMPLATE_COUNT):
        raise _TemplateProblem(f"count must be an integer from 1 to {MAX_TEMPLATE_COUNT}, not {count!r}")
    seed = raw.get("seed")
    if seed is None:  # derived from the slug: the same variants on every run and machine, unlike hash()
        seed = int.from_bytes(hashlib.sha256(slug.encode()).digest()[:8], "big")
    elif not _is_int(seed):
        raise _TemplateProblem(f"seed must be an integer, not {seed!r}")
    item = raw.get("item")
    if not isinstance(item, dict):
        raise _TemplateProblem("missing 'item' (the item to vary, with [[...]] placeholders)")
    for key in ("slug", "template"):
        if key in item:
            raise _TemplateProblem(f"the item's '{key}' comes from the template; remove it")
    return slug, count, seed, item


def _expand_template(raw: dict, index, file, issues: _Issues):
    """[(where, item)] for the variants of one template; [] after reporting problems."""
    where = _label("template", raw, index)
    _unknown_keys(raw, TEMPLATE_KEYS, file, where, issues)
    try:
        slug, count, seed, item = _template_settings(raw, where)
        raw_vars = raw.get("vars") or {}
        if not isinstance(raw_vars, dict):
            raise _TemplateProblem("'vars' must be a mapping of name: {int|choice|expr: ...}")
    except _TemplateProblem as exc:
        issues.add(file, where, str(exc))
        return []

    variables, names, text_vars = [], set(), set()
    for name, spec in raw_vars.items():
        try:
            kind, detail = _compile_var(name, spec, names, text_vars)
        except _TemplateProblem as exc:
            issues.add(file, f"{where} var '{name}'", str(exc))
            continue
        variables.append((name, kind, detail))
        (text_vars if kind == "text" else names).add(name)
    if len(variables) < len(raw_vars):
        return []

    conditions = raw.get("where", [])
    if isinstance(conditions, str):
        conditions = [conditions]
    try:
        if not isinstance(conditions, list) or not all(isinstance(c, str) for c in conditions):
            raise _TemplateProblem("'where' must be a condition like 'c > 0' or a list of them")
        checks = [_compile_expression(c, names, text_vars) for c in conditions]
        placeholders = {}  # placeholder text -> (latex form?, compiled expression)
        for string in _strings(item):
            for inner in _PLACEHOLDER.findall(string):
                if inner.strip() not in text_vars:
                    latex_form = _LATEX_FORM.match(inner)
                    expression = latex_form.group(1) if latex_form else inner
                    code = _compile_expression(expression, names, text_vars)
                    placeholders[inner] = (bool(latex_form), code)
    except _TemplateProblem as exc:
        issues.add(file, where, str(exc))
        return []

    rng = random.Random(seed)
    draws, seen, tries, max_tries = [], set(), 0, 100 * count + 1000
    try:
        while len(draws) < count and tries < max_tries:
            tries += 1
            values = _draw(variables, rng)
            if values is None or not all(_evaluate(check, _numeric(values)) for check in checks):
                continue
            key = tuple(values.items())
            if key not in seen:
                seen.add(key)
                draws.append(values)
    except (TypeError, ValueError, ArithmeticError) as exc:
        issues.add(file, where, f"cannot evaluate: {exc}")
        return []
    if len(draws) < count:
        issues.add(file, where, f"made only {len(draws)} distinct variants of {count} in {tries} draws; "
                                "widen the ranges or relax 'where'")
        return []

    def render(inner, values):
        if inner.strip() in text_vars:
            return values[inner.strip()]
        is_latex, code = placeholders[inner]
        value = _evaluate(code, _numeric(values))
        return sympy.latex(value) if is_latex else str(value)  # str: exact, 7/2 stays "7/2"

    variants = []
    for number, values in enumerate(draws, 1):
        variant = _substitute(item, lambda inner, values=values: render(inner, values))
        variant["slug"] = f"{slug}-{number}"
        variant["template"] = slug
        variants.append((f"{where} item '{slug}-{number}'", variant))
    return variants


# ---------------------------------------------------------------- the whole package

def _normalise(files: list, issues: _Issues):
    """The normalised package from [(file name, data)], the first being the main file."""
    main_file, main = files[0]
    _unknown_keys(main, TOP_KEYS, main_file, "top level", issues)
    _check_format(main, main_file, issues)
    course = _course(main, main_file, issues)
    for file, data in files[1:]:
        for key in ("format", "course"):
            if key in data:
                issues.add(file, "top level", f"'{key}' belongs in the main file only")
        _unknown_keys({k: v for k, v in data.items() if k not in ("format", "course")},
                      INCLUDED_KEYS, file, "top level", issues)

    skills, skill_files = [], {}
    for file, data in files:
        for index, raw in enumerate(_list_of_mappings(data, "skills", file, issues), 1):
            skill = _skill(raw, index, file, issues)
            if skill["slug"] is None:
                continue
            if skill["slug"] in skill_files:
                issues.add(file, f"skill '{skill['slug']}'",
                           f"duplicate skill slug (first defined in {skill_files[skill['slug']]})")
                continue
            skill_files[skill["slug"]] = file
            skills.append(skill)
    _check_prerequisites(skills, skill_files, issues)

    skill_slugs = set(skill_files)
    items, item_files = [], {}

    def add_item(raw, where, file, item_issues):
        item = _item(raw, where, file, skill_slugs, item_issues)
        slug = item["slug"]
        if slug is None:
            return
        if slug in item_files:
            issues.add(file, where, f"duplicate item slug '{slug}' (first defined in {item_files[slug]})")
            return
        item_files[slug] = file
        items.append(item)

    for file, data in files:
        for n, raw in enumerate(_list_of_mappings(data, "items", file, issues), 1):
            add_item(raw, _label("item", raw, n), file, issues)
        for n, raw in enumerate(_list_of_mappings(data, "templates", file, issues), 1):
            variants = _expand_template(raw, n, file, issues)
            variant_issues = _Issues()
            for where, variant in variants:
                add_item(variant, where, file, variant_issues)
            issues.list.extend(_once_per_template(variant_issues.list, variants))
    return {"format": FORMAT, "course": course, "skills": skills, "items": items}


def _once_per_template(found: list, variants: list) -> list:
    """A problem at the same place in several variants of a template, reported once with a count."""
    groups = {}
    for issue in found:
        shape = issue.where
        for where, _ in variants:
            if shape.startswith(where):
                shape = shape.replace(where, "", 1)
                break
        groups.setdefault(shape, []).append(issue)
    merged = []
    for same_place in groups.values():
        first, others = same_place[0], len(same_place) - 1
        suffix = f" (and at the same place in {others} more variant{'s' * (others > 1)})" if others else ""
        merged.append(PackageIssue(first.file, first.where, first.message + suffix))
    return merged


def normalise_package(data: dict, file: str = "<package>") -> dict:
    """Check and normalise a package given as data (no includes); raise PackageError on problems.

    Importers use it to check what they produce, and it accepts its own output unchanged.
    """
    issues = _Issues()
    if not isinstance(data, dict):
        raise PackageError([PackageIssue(file, "", "a package is a mapping (format, course, skills, items)")])
    if data.get("include"):
        issues.add(file, "include", "includes need files: use read_package")
    package = _normalise([(file, data)], issues)
    if issues.list:
        raise PackageError(issues.list)
    return package


def read_package_text(text: str, file_name: str) -> dict:
    """Check and normalise a package uploaded as one file's text (no includes: they need the other files);
    the file name's suffix says YAML or JSON. Raise PackageError listing every problem."""
    issues = _Issues()
    suffix = Path(file_name).suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise PackageError([PackageIssue(file_name, "", "unknown file type (expected .yaml, .yml or .json)")])
    data = _parse_text(text, suffix, file_name, issues)
    if data is None:
        raise PackageError(issues.list)
    if data.get("include"):
        issues.add(file_name, "include", "an uploaded package is one file: merge the included files into it")
    package = _normalise([(file_name, data)], issues)
    if issues.list:
        raise PackageError(issues.list)
    return package


def package_warnings(package: dict, file: str = "<package>") -> list[PackageIssue]:
    """What a valid package still does badly for learners: skills no item practises, skills that can never be
    unlocked because a prerequisite (or one of its own) has no items, and steps with no hints (a learner who
    is stuck gets no help from the lesson)."""
    found = _Issues()
    practised = {slug for item in package["items"] for slug in item["skills"]}
    requires = {s["slug"]: s["requires"] for s in package["skills"]}
    for skill in package["skills"]:
        slug = skill["slug"]
        if slug not in practised:
            found.add(file, f"skill '{slug}'", "no item practises this skill, so learners can never master it")
            continue
        blocked = sorted(_unpractised_ancestors(slug, requires, practised))
        if blocked:
            names = ", ".join(f"'{b}'" for b in blocked)
            found.add(file, f"skill '{slug}'", f"unreachable: it needs {names}, which no item practises")
    for item in package["items"]:
        for number, step in enumerate(item["steps"], 1):
            if not step.get("hints"):
                found.add(file, f"item '{item['slug']}' step {number}", "no hints: add at least one rung")
    return found.list


def _unpractised_ancestors(slug, requires: dict, practised: set) -> set:
    seen, stack = set(), list(requires.get(slug, []))
    while stack:
        before = stack.pop()
        if before not in seen:
            seen.add(before)
            stack.extend(requires.get(before, []))
    return {s for s in seen if s not in practised}


def read_package(path) -> dict:
    """Read, check and normalise a course package; raise PackageError listing every problem."""
    path = Path(path)
    issues = _Issues()
    files = []
    _read_files(path, str(path), issues, (), {}, files)
    package = _normalise(files, issues) if files else None  # files[0] is the main file
    if issues.list or package is None:
        raise PackageError(issues.list)
    return package


# ---------------------------------------------------------------- writing

_ORDER = {
    "package": ("format", "course", "skills", "items"),
    "course": COURSE_KEYS,
    "skill": SKILL_KEYS,
    "bkt": tuple(DEFAULT_BKT),
    "item": ITEM_KEYS,
    "step": STEP_KEYS,
    "hint": HINT_KEYS,
}


def _ordered(mapping: dict, kind: str) -> dict:
    keys = _ORDER[kind]
    first = {k: mapping[k] for k in keys if k in mapping}
    return {**first, **{k: v for k, v in mapping.items() if k not in first}}


def _answer_ordered(spec):
    if not isinstance(spec, dict):
        return spec
    return {**({"type": spec["type"]} if "type" in spec else {}), **spec}


class _Flow(dict):
    """Written on one line: {p_init: 0.2, ...}."""


class _FlowList(list):
    """Written on one line: [a, b]."""


def _for_writing(package: dict) -> dict:
    out = _ordered(package, "package")
    out["course"] = _ordered(package.get("course", {}), "course")
    out["skills"] = [{**_ordered(s, "skill"), "requires": _FlowList(s.get("requires", [])),
                      **({"bkt": _Flow(_ordered(s["bkt"], "bkt"))} if "bkt" in s else {})}
                     for s in package.get("skills", [])]
    items = []
    for item in package.get("items", []):
        steps = []
        for step in item.get("steps", []):
            hints = [_ordered({**h, **({"answer": _answer_ordered(h["answer"])} if "answer" in h else {})},
                              "hint") for h in step.get("hints", [])]
            steps.append(_ordered({**step, "answer": _answer_ordered(step.get("answer")),
                                   "skills": _FlowList(step.get("skills", [])), "hints": hints}, "step"))
        items.append(_ordered({**item, "skills": _FlowList(item.get("skills", [])), "steps": steps}, "item"))
    out["items"] = items
    return out


class _ReadableDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):
    """Block style, multi-line text as literal blocks (``|``), long lines left unfolded."""


def _represent_text(dumper, text):
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_ReadableDumper.add_representer(str, _represent_text)
_ReadableDumper.add_representer(_Flow, lambda d, data: d.represent_mapping(
    "tag:yaml.org,2002:map", data.items(), flow_style=True))
_ReadableDumper.add_representer(_FlowList, lambda d, data: d.represent_sequence(
    "tag:yaml.org,2002:seq", data, flow_style=True))


def dump_package(package: dict) -> str:
    """A normalised package as the text of one YAML file."""
    return yaml.dump(_for_writing(package), Dumper=_ReadableDumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=1_000_000, indent=2)


def write_package(package: dict, path) -> Path:
    """Write a normalised package as one YAML file; return its path."""
    path = Path(path)
    path.write_text(dump_package(package), encoding="utf-8")
    return path


def load_yaml_value(text: str):
    """One value (an answer spec, a hint ladder) as an author types it in YAML, read as a package file is."""
    return yaml.load(text, Loader=_StrictLoader)


def dump_yaml_value(value) -> str:
    """One value as readable YAML, the way write_package writes it."""
    return yaml.dump(value, Dumper=_ReadableDumper, sort_keys=False, allow_unicode=True, default_flow_style=False,
                     width=1_000_000, indent=2)
