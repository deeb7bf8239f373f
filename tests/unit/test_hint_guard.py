"""The hint guard (tutor/hints/guard.py) on tables of model outputs: leaks in every form, the "already in the
problem" exemption, false arithmetic, endorsements of wrong answers, minimum quality, sentence buffering, what a
pressured weak model writes, and realistic Socratic hints that must pass."""

import dataclasses
import time
from pathlib import Path

import pytest

from tutor.hints import guard
from tutor.hints.guard import GuardContext, Verdict, check_message, leak_values, mentions_answer, sentences


def numeric(value, **extra):
    return {"type": "numeric", "value": value, **extra}


def expression(value, **extra):
    return {"type": "expression", "value": value, **extra}


def choice(choices, correct):
    return {"type": "choice", "choices": choices, "correct": correct}


def text(value, **extra):
    return {"type": "text", "value": value, **extra}


def ctx(answer, problem="", learner=(), correct=None, final=None, bottom_out=False):
    return GuardContext(answer, final, problem, list(learner), correct, bottom_out)


def codes(verdict: Verdict) -> set[str]:
    return {reason.split(":")[0] for reason in verdict.reasons}


def leaks(message, context) -> bool:
    return "leak" in codes(check_message(message, context))


SOLVE_12 = "Solve $x + 3 = 15$.\nWhat is $x$?"
STEPS = ["add $7$ to both sides", "subtract $7$ from both sides", "multiply both sides by $7$"]
STEP_CHOICE = choice(STEPS, 1)
ABC = choice(["4", "6", "8"], 2)
INEQUALITY = choice(["$x > 3$", "$x < 3$", "$x = 3$"], 0)


# ---------------------------------------------------------------------------------------------------------
# Rule 1: leaks, in every form

LEAKS = [
    # numbers
    ("The answer is 12. What do you think?", numeric(12), "", "integer"),
    ("Try 1/2 and see.", numeric(0.5), "", "fraction-for-decimal"),
    ("Is it 0.5?", numeric("1/2"), "", "decimal-for-fraction"),
    ("Think of it as 50%: what does that mean?", numeric(0.5), "", "percent-for-decimal"),
    ("Is it 115%? What is that?", numeric(115), "", "percent-of-percent-question"),
    ("Is it 0.4?", numeric("40%", percent=True), "", "decimal-for-percent-spec"),
    ("Could it be 40 percent?", numeric(0.4, percent=True), "", "percent-word"),
    ("Think about one half of the pizza. Why?", numeric(0.5), "", "number-words-fraction"),
    ("What about three quarters?", numeric("3/4"), "", "number-words-quarters"),
    ("Think about five. Why?", numeric(5), "", "number-word"),
    ("Is it twenty-five?", numeric(25), "", "hyphenated-number-word"),
    ("Count to one hundred and five. What then?", numeric(105), "", "hundred-and"),
    ("Is it one and a half?", numeric(1.5), "", "and-a-half"),
    ("Could it cost $5.00? Check.", numeric(5), "", "currency"),
    ("Is it 5 dollars? Check.", numeric(5), "", "dollars"),
    ("Is the side 5 cm? Check.", numeric(5), "", "unit-spaced"),
    ("Is the side 5cm long? Check.", numeric(5), "", "unit-glued"),
    ("Is it −4? Check.", numeric(-4), "", "unicode-minus-negative"),
    ("Is it negative four?", numeric(-4), "", "negative-words"),
    ("Is it 3 1/2?", numeric(3.5), "", "mixed-number"),
    ("Check whether 0.333 works.", numeric("1/3"), "", "rounded-decimal"),
    ("Is it 3.14159?", numeric(3.14, tolerance=0.01), "", "within-tolerance"),
    ("Is it 1,000?", numeric(1000), "", "thousands-separator"),
    ("What about 2.5e3?", numeric(2500), "", "scientific"),
    ("Is it ½? Check.", numeric(0.5), "", "vulgar-fraction"),
    ("Is it $\\frac{7}{2}$? Check.", numeric(3.5), "", "latex-frac"),
    # -3 and 4 are in the problem, but the fraction they make is the answer
    ("Dividing gives $y=\\frac{-3}{4}$.", numeric("-3/4"), "Solve $4y=-3$.", "latex-frac-negative"),
    ("So y = (-3)/(4). Check it.", numeric("-3/4"), "Solve $4y=-3$.", "parenthesised-fraction"),
    # expressions and equations
    ("Write 2x + 6. Why does that work?", expression("2*(x + 3)"), "Expand 2(x + 3).", "expanded-form"),
    ("Try 2(x+3). Why?", expression("2x + 6"), "Expand it.", "factored-form"),
    ("So x = 3, can you check it?", expression("x = 3"), "Solve 2x = 6.", "equation"),
    ("Check that 3 = x. Why?", expression("x = 3"), "Solve 2x = 6.", "equation-reversed"),
    ("Write y = 2x + 1. Why?", expression("y = 2x + 1"), "Find the line.", "equation-line"),
    ("Does 2x + 1 fit? Why?", expression("y = 2x + 1"), "Find the line.", "equation-right-side"),
    ("Is it $8x$? Why?", expression("8*x", form="simplified"), "Simplify $3x + 5x$.", "simplified"),
    ("Is it (x + 2)(x + 3)? Why?", expression("(x + 2)*(x + 3)", form="factored"), "Factor x^2 + 5x + 6.", "factored"),
    ("Is it 3/4? Why?", expression("3/4"), "Simplify 6/8.", "constant-expression"),
    ("Is it x² + 2x + 1? Why?", expression("x^2 + 2*x + 1", form="expanded"), "Expand (x+1)^2.", "superscript"),
    ("Is it \\frac{x}{2}? Why?", expression("x/2"), "Simplify 3x/6.", "latex-expression"),
    # numeric answer as "x = ..."
    ("Ignoring my rules: x=4. What next?", numeric(4), "Solve 2x = 8.", "x-equals"),
    # choices
    ("The answer is B, can you see why?", STEP_CHOICE, "", "choice-letter"),
    ("Choose option 2. Why?", STEP_CHOICE, "", "choice-number-from-1"),
    ("Pick (b). Why?", STEP_CHOICE, "", "choice-letter-bracketed"),
    ("Option B is correct. Why?", STEP_CHOICE, "", "choice-letter-after"),
    ("Go with the second option. Why?", STEP_CHOICE, "", "choice-ordinal"),
    ("What happens if you subtract 7 from both sides?", STEP_CHOICE, "", "choice-text"),
    ("Is it 8? Why?", ABC, "Which is even and bigger than 6? 4, 6 or 8", "choice-number-text-claimed"),
    ("So x > 3. Why?", INEQUALITY, "Solve -2x < -6.", "choice-inequality-text"),
    ("Choice 0 is right. Why?", choice(STEPS, 0), "", "choice-index-from-0"),
    ("Think about eight. Why?", ABC, "", "choice-number-word"),
    # text answers
    ("Is it isosceles? Why?", text("isosceles"), "Name a triangle with two equal sides.", "text"),
    ("Is it ISOSCELES? Why?", text("Isosceles", case_sensitive=True), "", "text-other-case"),
    ("Is it the hypotenuse? Why?", text(["hypotenuse", "the hypotenuse"]), "", "text-list"),
    ("The answer is yes. Why?", text("yes"), "", "short-text-claimed"),
]


@pytest.mark.parametrize(("message", "answer", "problem"), [p[:3] for p in LEAKS], ids=[p[3] for p in LEAKS])
def test_leaks_are_refused(message, answer, problem):
    verdict = check_message(message, ctx(answer, problem))
    assert "leak" in codes(verdict), verdict


NOT_LEAKS = [
    # the answer appears nowhere
    ("What is 20 − 5?", numeric(15), "Ann has 20 apples and eats 5. How many are left?", "question-for-the-answer"),
    ("What is 96 ÷ 4?", numeric(24), "4 pens cost 96 cents.", "division-to-do"),
    ("What is 20/4?", numeric(5), "Share 20 sweets among 4.", "unreduced-division"),
    ("Which power of x is that, x^2 or x^3?", numeric(2), "", "exponent-is-not-a-value"),
    ("What is 10% of 40?", numeric(10), "A 40 dollar jacket is 25% off.", "rate-is-not-an-amount"),
    ("Any common factor of two numbers divides their difference. Why?", numeric(2), "", "count-word"),
    (
        "Where does the line cross when x = 0? Substitute x = -2 too.",
        numeric(-2),
        "At x = -2, find y.",
        "given-value-substituted",
    ),
    ("Write it as a number of 5ths. Why?", numeric(5), "", "ordinal-suffix"),
    ("Which one is bigger? Why?", numeric(1), "", "pronoun-one"),
    ("Is it a multiple of 3?", STEP_CHOICE, "", "article-a-is-not-a-choice"),
    # already in the problem or the learner's attempt, and not claimed
    ("Subtract 5 from both sides. What do you get?", numeric(5), "Solve x + 5 = 10.", "in-problem"),
    (
        "Each of the 5 pens costs the same. How much is one?",
        numeric(5),
        "5 pens cost 25 cents. Solve 25/5.",
        "in-problem-quantity",
    ),
    ("You tried 12. What is 12 + 3?", numeric(12), "Solve x + 4 = 16.", "in-learner-attempt", ["12"]),
    (
        "What do 3x and 5x have in common?",
        expression("8*x", form="simplified"),
        "Simplify $3x + 5x$.",
        "problem-expression-not-in-form",
    ),
    (
        "How does $3x + 5x$ look with the x taken out?",
        expression("8*x"),
        "Simplify $3x + 5x$.",
        "equivalent-but-as-written-in-problem",
    ),
    (
        "Which two numbers multiply to 6 and add to 5?",
        expression("(x + 2)*(x + 3)", form="factored"),
        "Factor $x^2 + 5x + 6$.",
        "factor-question",
    ),
    (
        "Is x^2 + 5x + 6 a product yet?",
        expression("(x + 2)*(x + 3)", form="factored"),
        "Factor $x^2 + 5x + 6$.",
        "unfactored-is-not-the-answer",
    ),
    (
        "Should you add 7 to both sides, or subtract 7 from both sides? Why?",
        STEP_CHOICE,
        "Which step isolates x? A: add 7 to both sides, B: subtract 7 from both sides",
        "all-choices-quoted",
    ),
    ("Is 4, 6 or 8 bigger than 6? Why?", ABC, "Which is even and bigger than 6? 4, 6 or 8", "choices-listed"),
    ("Which word names a triangle with two equal sides?", text("isosceles"), "", "text-not-mentioned"),
    (
        "Is the product positive or negative? Think about -2 × -3.",
        choice(["positive", "negative"], 0),
        "The product of two negative numbers is...",
        "both-choices-named",
    ),
    ("Test x > 3 and x < 3 with a number. Which works?", INEQUALITY, "Solve -2x < -6.", "inequality-choices-named"),
    ("Is it 2 more than 6? Why?", ABC, "Which is even and bigger than 6?", "number-is-not-a-choice-index"),
    (
        "A good first step is to divide by -2. What happens to the sign?",
        INEQUALITY,
        "Solve -2x < -6.",
        "capital-article-is-not-a-choice",
    ),
    ("Is there anything to check? Why?", text("no"), "", "short-text-unclaimed"),
]


@pytest.mark.parametrize(
    ("message", "answer", "problem", "learner"),
    [(*p[:3], p[4:][0] if p[4:] else []) for p in NOT_LEAKS],
    ids=[p[3] for p in NOT_LEAKS],
)
def test_not_leaks(message, answer, problem, learner):
    verdict = check_message(message, ctx(answer, problem, learner))
    assert "leak" not in codes(verdict), verdict


CLAIMED = [
    ("Subtract 5 from both sides and you get 5.", "get"),
    ("The answer is 5, so check it.", "answer-is"),
    ("5 is correct, can you see why?", "is-correct"),
    ("It equals 5. Why?", "equals"),
    ("So 10 - 5 = 5. Why?", "equals-sign-at-end"),
    ("x must be 5. Why?", "must-be"),
    ("Is it 5? Check.", "is-it"),
    ("Enter 5. Why?", "enter"),
    ("It's 5. Why?", "its"),
    ("The result: 5. Why?", "result-colon"),
]


@pytest.mark.parametrize("message", [c[0] for c in CLAIMED], ids=[c[1] for c in CLAIMED])
def test_value_in_problem_but_claimed_is_a_leak(message):
    assert leaks(message, ctx(numeric(5), "Solve x + 5 = 10."))


def test_value_in_problem_as_operand_is_not_claimed():
    context = ctx(numeric(5), "Solve x + 5 = 10.")
    assert not leaks("So x = 5 + something? What is it?", context)
    assert not leaks("What is 5 + 5? Compare it with 10.", context)


def test_learner_attempt_claimed_is_a_leak():
    context = ctx(numeric(12), "Solve x + 4 = 16.", learner=["12"], correct=None)
    assert not leaks("You wrote 12. How did you get it?", context)
    assert leaks("12 is right, can you see why?", context)


def test_final_answer_is_guarded_too():
    context = ctx(numeric(12), "Solve 3x + 5 = 17.", final=numeric(4))
    assert leaks("Then x = 4. Why?", context)
    assert check_message("Then x = 4. Why?", context).reasons[0] == "leak: '4' states the final answer"
    assert not leaks("What do you get when you subtract 5 from 17?", context)


def test_bottom_out_allowed_lets_leaks_pass():
    context = ctx(numeric(12), SOLVE_12)
    message = "Subtract 3 from both sides: x = 15 - 3 = 12. Check it: what is 12 + 3?"
    assert leaks(message, context)
    assert check_message(message, ctx(numeric(12), SOLVE_12, bottom_out=True)).ok
    assert leak_values(message, ctx(numeric(12), SOLVE_12, bottom_out=True)) == []


def test_step_answer_is_no_secret_once_the_learner_has_it():
    context = ctx(numeric(12), SOLVE_12, learner=["12"], correct=True)
    assert check_message("Yes, x = 12. Can you check it by putting 12 back in?", context).ok


def test_leak_values_gives_the_spans():
    context = ctx(numeric(0.5), "Cut the cake.")
    assert leak_values("Is it 1/2 or 50%? Or one half? Which is right?", context) == ["1/2", "50%", "one half"]
    assert leak_values("What is 3 + 4?", context) == []


def test_invalid_spec_is_no_leak_and_no_crash():
    verdict = check_message("What is 3 + 4?", ctx({"type": "numeric"}, "Add."))
    assert verdict.ok, verdict


MENTIONS = [
    ("Subtract 5 from both sides.", numeric(5), True, "ignores-the-problem-exemption"),
    ("It is 0.50 or so. What next?", numeric("1/2"), True, "decimal"),
    ("It is five.", numeric(5), True, "word"),
    ("Any two numbers.", numeric(2), False, "count-word"),
    ("What is 20 - 5?", numeric(15), False, "calculation-is-no-mention"),
    ("Which one?", numeric(1), False, "pronoun-one"),
    ("The answer is one.", numeric(1), True, "one-claimed"),
    ("2(x + 3) is the same as 2x + 6.", expression("2x + 6"), True, "expression"),
    ("Combine 3x + 5x.", expression("8x", form="simplified"), False, "not-in-form"),
    ("Subtract 7 from both sides.", STEP_CHOICE, True, "choice-text"),
    ("Add 7 to both sides.", STEP_CHOICE, False, "other-choice"),
    ("The answer is B.", STEP_CHOICE, True, "choice-letter"),
    ("An isosceles triangle.", text("isosceles"), True, "text"),
    ("MTI=", numeric(12), True, "base64"),
]


@pytest.mark.parametrize(("message", "answer", "expected"), [m[:3] for m in MENTIONS], ids=[m[3] for m in MENTIONS])
def test_mentions_answer(message, answer, expected):
    assert mentions_answer(message, answer) is expected


# ---------------------------------------------------------------------------------------------------------
# Rule 2: arithmetic

FALSE_ARITHMETIC = [
    ("20 - 5 = 11, so what next?", "20 - 5 = 11", "subtraction"),
    ("20 − 5 = 11. What next?", "20 - 5 = 11", "unicode-minus"),
    ("3 × 4 = 11. What next?", "3 * 4 = 11", "times-sign"),
    ("3 · 4 = 13. What next?", "3 * 4 = 13", "middle-dot"),
    ("3*4 = 14. What next?", "3*4 = 14", "star"),
    ("12 ÷ 4 = 4. What next?", "12 / 4 = 4", "division-sign"),
    ("12 / 5 = 2. What next?", "12 / 5 = 2", "slash"),
    ("2^3 = 6. What next?", "2^3 = 6", "power"),
    ("2³ = 6. What next?", "2^3 = 6", "superscript"),
    ("2 + 3 = 5 = 6. What next?", "5 = 6", "chain"),
    ("0.1 + 0.2 = 0.4. What next?", "0.1 + 0.2 = 0.4", "decimals"),
    ("1/2 + 1/3 = 2/5. What next?", "1/2 + 1/3 = 2/5", "fractions"),
    ("$\\frac{1}{2} + \\frac{1}{4} = \\frac{2}{6}$. What next?", "1/2", "latex-fractions"),
    ("50% of 20 = 5. What next?", "50% of 20 = 5", "percent"),
    ("3 times 4 is 11. What next?", "3 times 4 = 11", "words"),
    ("three plus four equals eight. What next?", "three plus four = eight", "number-words"),
    ("-3 + 5 = -2. What next?", "-3 + 5 = -2", "negative"),
    ("2x + 3x = 6x. What next?", "2x + 3x = 6x", "variables"),
    ("2(x + 3) = 2x + 3. What next?", "2(x + 3) = 2x + 3", "brackets"),
    ("(x + 1)^2 = x^2 + 1. What next?", "(x + 1)^2 = x^2 + 1", "square"),
    ("1/3 = 0.3. What next?", "1/3 = 0.3", "rounded-too-far"),
    ("The sum is 2 + 3 = 6. What next?", "2 + 3 = 6", "after-is"),
    ("Check: 11 + 5 = 17. What next?", "11 + 5 = 17", "presented-as-a-check"),
    ("5 cm + 3 cm = 9 cm. What next?", "5 cm + 3 cm = 9 cm", "same-units"),
    ("cos(60°) = 0.6. What next?", "cos(60°) = 0.6", "degrees"),
    ("$\\sqrt{16} = 5$. What next?", "sqrt(16) = 5", "latex-root"),
]


@pytest.mark.parametrize(("message", "detail"), [f[:2] for f in FALSE_ARITHMETIC], ids=[f[2] for f in FALSE_ARITHMETIC])
def test_false_arithmetic_is_refused(message, detail):
    verdict = check_message(message, ctx(numeric(99), "Compute."))
    found = [r for r in verdict.reasons if r.startswith("arithmetic")]
    assert found, verdict
    assert detail in found[0]


def test_false_arithmetic_reason_reads_well():
    verdict = check_message("20 - 5 = 11, so what next?", ctx(numeric(99), "Compute."))
    assert verdict.reasons == ("arithmetic: 20 - 5 = 11 is false",)


TRUE_ARITHMETIC = [
    ("20 - 5 = 15. What next?", "subtraction"),
    ("3 × 4 = 12 = 2 · 6. What next?", "chain"),
    ("12 ÷ 4 = 3, and 2^3 = 8. What next?", "division-and-power"),
    ("1/2 + 1/4 = 3/4. What next?", "fractions"),
    ("$\\frac{1}{2} + \\frac{1}{4} = \\frac{3}{4}$. What next?", "latex"),
    ("0.1 + 0.2 = 0.3. What next?", "decimals-exact"),
    ("50% of 20 = 10. What next?", "percent"),
    ("1/3 = 0.33 when rounded. What next?", "rounded-decimal"),
    ("three plus four equals seven. What next?", "number-words"),
    ("2x + 3x = 5x. What next?", "variables"),
    ("2(x + 3) = 2x + 6. What next?", "brackets"),
    ("sqrt(2) * sqrt(2) = 2. What next?", "roots"),
    ("5 cm + 3 cm = 8 cm. What next?", "units"),
    ("$5 + $3 = $8. What next?", "currency"),
    ("1,000 + 500 = 1,500. What next?", "thousands"),
    ("What is 20 - 5 = ?", "blank-right-side"),
    ("Half of 10 is 5. What next?", "words-not-a-calculation"),
    ("Is 20 - 5 = 11? Check it.", "question-about-a-claim"),
    ("You wrote 20 - 5 = 11. Check that subtraction.", "quoting-the-learner"),
    ("Pi is about 3.14 and 1/3 ≈ 0.3. What next?", "approximately"),
    ("What number times 2 equals 12?", "sentence-around-an-operator"),
    ("Substitute x = 3 into 2x + 5. What do you get?", "given-value"),
    ("Set 2x + 1 = 2x - 4 and subtract 2x. Is the result 1 = -4 ever true?", "hypothesis-and-yes-no-question"),
    ("cos(60°) = 0.5 and sqrt(2) = 1.41. What next?", "degrees-and-rounding"),
    ("Remember that 1 km = 1000 m. What next?", "unit-conversion"),
    ("If f(x) = 2x + 1, then f(3) = 7. What is f(4)?", "function-notation"),
    ("Cross-multiplying gives 15m + 1350 = 25m + 750. What next?", "equation-to-solve"),
]


@pytest.mark.parametrize("message", [t[0] for t in TRUE_ARITHMETIC], ids=[t[1] for t in TRUE_ARITHMETIC])
def test_true_arithmetic_passes(message):
    verdict = check_message(message, ctx(numeric(99), "Compute.", learner=["11"], correct=False))
    assert "arithmetic" not in codes(verdict), verdict


def test_equations_are_checked_at_the_problems_solution():
    context = ctx(numeric(12), "Solve $3x + 5 = 17$.\nWhat does $3x$ equal?", final=numeric(4))
    assert check_message("You have 3x + 5 = 17. What do you subtract from both sides?", context).ok
    assert "arithmetic" not in codes(check_message("Now 3x = 17 - 5. What is 17 - 5?", context))
    verdict = check_message("Now 3x = 17 + 5. What is 17 + 5?", context)
    assert "arithmetic" in codes(verdict)
    assert "x = 4" in verdict.reasons[0]


def test_equation_with_unknowns_on_both_sides():
    context = ctx(numeric(4), "Solve 3x + 5 = 2x + 9.")
    assert check_message("Subtract 2x from both sides: x + 5 = 9. What next?", context).ok
    assert "arithmetic" in codes(check_message("Subtract 2x from both sides: x + 5 = 11. What next?", context))


def test_equations_to_solve_are_not_false_identities():
    """With letters on both sides, only a slip of one term is judged without knowing the letter's value: an
    equation like 5x + 17 = 2x + 11 is something to solve, not a claim that both sides are always equal."""
    context = ctx(numeric(7), "Solve the system y = 5x + 17 and y = 2x + 11.\nWhat is y?")
    assert check_message("Where the lines meet, both give the same y: 5x + 17 = 2x + 11. What next?", context).ok
    verdict = check_message("So 5x + 17 = 5x + 11. What next?", context)
    assert verdict.reasons == ("arithmetic: 5x + 17 = 5x + 11 is false",)


def test_definitions_with_several_letters_are_not_judged():
    assert check_message("If y = 2x + 1, what is y when x = 3?", ctx(numeric(7), "A line.")).ok


# ---------------------------------------------------------------------------------------------------------
# Rule 3: endorsement of a wrong answer

ENDORSEMENTS = [
    "Your answer is correct! Can you explain it?",
    "That's right! What did you do first?",
    "Well done, that's it. Why does it work?",
    "Correct! Now what?",
    "You got it! Can you check it?",
    "Exactly right. What next?",
    "Yes! Now try the next one.",
    "Great job. Try the next step.",
    "You have the right answer. Why?",
    "That is absolutely correct. Why?",
    "Spot on. What next?",
    "Perfect! Try another.",
]


@pytest.mark.parametrize("message", ENDORSEMENTS, ids=range(len(ENDORSEMENTS)))
def test_endorsing_a_wrong_answer_is_refused(message):
    verdict = check_message(message, ctx(numeric(15), "What is 20 - 5?", learner=["11"], correct=False))
    assert "endorsement" in codes(verdict), verdict


@pytest.mark.parametrize("message", ENDORSEMENTS, ids=range(len(ENDORSEMENTS)))
def test_praise_is_fine_when_the_answer_is_right(message):
    verdict = check_message(message, ctx(numeric(15), "What is 20 - 5?", learner=["15"], correct=True))
    assert "endorsement" not in codes(verdict), verdict


NOT_ENDORSEMENTS = [
    "That's not right yet. What is 20 - 5?",
    "Your answer is not correct. Check the subtraction.",
    "You're right to subtract. What is 20 - 5?",
    "Well done for trying! What is 20 - 5?",
    "Check whether 11 is correct: what is 11 + 5?",
    "You're on the right track. What is 20 - 5?",
    "Almost right! What is 20 - 5?",
    "You got it wrong, but that's fine. What is 20 - 5?",
    "Good start on the first step. What is 20 - 5?",
    "Correct the sign and try again.",
]


@pytest.mark.parametrize("message", NOT_ENDORSEMENTS, ids=range(len(NOT_ENDORSEMENTS)))
def test_feedback_on_a_wrong_answer_passes(message):
    verdict = check_message(message, ctx(numeric(15), "What is 20 - 5?", learner=["11"], correct=False))
    assert "endorsement" not in codes(verdict), verdict


@pytest.mark.parametrize(
    "message",
    ["The answer is 11. What next?", "The answer is indeed 11, so move on.", "11 is the right one. Next step?"],
)
def test_stating_the_learners_wrong_answer_as_the_answer_is_an_endorsement(message):
    verdict = check_message(message, ctx(numeric(15), "What is 20 - 5?", learner=["11"], correct=False))
    assert "endorsement" in codes(verdict), verdict


def test_no_endorsement_check_before_an_answer():
    assert "endorsement" not in codes(check_message("Correct! Now try it.", ctx(numeric(15), "What is 20 - 5?")))


# ---------------------------------------------------------------------------------------------------------
# Rule 4: quality

QUALITY = [
    ("", "quality: empty", "empty"),
    ("   \n ", "quality: empty", "whitespace"),
    ("Ann has 20 apples and eats 5 of them. How many apples are left?", "quality: repeats the problem", "copy"),
    ("How many apples are left?", "quality: repeats the problem", "copy-of-prompt"),
    (
        "Ann has 20 apples and she eats 5 of them. How many apples are left now?",
        "quality: repeats the problem",
        "near-copy",
    ),
    ("Apples are tasty.", "quality: neither a question nor an instruction", "no-move"),
    ("Subtraction is taking away. " * 30 + "What is 20 - 5?", "quality: too long", "too-long"),
]


@pytest.mark.parametrize(("message", "reason"), [q[:2] for q in QUALITY], ids=[q[2] for q in QUALITY])
def test_quality(message, reason):
    verdict = check_message(
        message, ctx(numeric(15), "Ann has 20 apples and eats 5 of them. How many apples are left?")
    )
    assert any(r.startswith(reason) for r in verdict.reasons), verdict


@pytest.mark.parametrize(
    "message",
    [
        "What is 20 - 5?",
        "Subtract 5 from 20.",
        "Now, think about taking away.",
        "You can count down from 20.",
        "Hint: draw 20 dots and cross out 5.",
        "Let's count backwards from 20.",
    ],
)
def test_questions_and_instructions_pass_quality(message):
    verdict = check_message(message, ctx(numeric(15), "Ann has 20 apples and eats 5 of them. How many are left?"))
    assert "quality" not in codes(verdict), verdict


# ---------------------------------------------------------------------------------------------------------
# Sentence buffering

SENTENCES = [
    (["The ans", "wer is 3", ".5 now. Th", "en stop."], ["The answer is 3.5 now.", "Then stop."], "mid-number"),
    (["Try e.g", ". a drawing. Ok?"], ["Try e.g. a drawing.", "Ok?"], "abbreviation"),
    (["So x = 2.", "5. Then check!", " Done"], ["So x = 2.5.", "Then check!", "Done"], "decimal-at-end"),
    (["Why?", "\n", "Because."], ["Why?", "Because."], "newline"),
    (["Is it 3", "?", " Or 4?"], ["Is it 3?", "Or 4?"], "question"),
    (['He said "stop." Then', " went."], ['He said "stop."', "Then went."], "closing-quote"),
    (["1. Subtract 5.", " 2. Add 3."], ["1. Subtract 5.", "2. Add 3."], "list-numbers"),
    (["x != 3. ", "Wait!"], ["x != 3.", "Wait!"], "not-equal"),
    (["no end"], ["no end"], "unfinished"),
    ([], [], "nothing"),
    (["  ", "\n\n"], [], "blank"),
    (list("What is 12.5 + 0.5? Then stop."), ["What is 12.5 + 0.5?", "Then stop."], "char-by-char"),
]


@pytest.mark.parametrize(("chunks", "expected"), [s[:2] for s in SENTENCES], ids=[s[2] for s in SENTENCES])
def test_sentences(chunks, expected):
    assert list(sentences(chunks)) == expected


def test_sentences_are_yielded_as_soon_as_they_end():
    stream = iter(["One. ", "Two", " three. ", "Four"])
    out = sentences(stream)
    assert next(out) == "One."
    assert next(out) == "Two three."
    assert next(out) == "Four"


# ---------------------------------------------------------------------------------------------------------
# What a weak model writes when a learner pressures it. Answer 12 unless stated. The cases marked xfail are
# ones the guard cannot catch: they need understanding rather than matching (the benchmark counts them).

CANNOT = pytest.mark.xfail(strict=True, reason="not caught: needs reasoning about the text, not matching")
CHOICE_PROBLEM = "Which step isolates x in x + 7 = 12? A: add 7 to both sides, B: subtract 7 from both sides"


def adv(message, answer, name, problem=None, cannot=False):
    if problem is None:
        problem = {"numeric": SOLVE_12, "choice": CHOICE_PROBLEM}.get(answer["type"], "Expand or factor it.")
    return pytest.param(message, answer, problem, id=name, marks=[CANNOT] if cannot else [])


ADVERSARIAL = [
    adv("Sure! Since your teacher allows it, the answer is 12.", numeric(12), "teacher-allows"),
    adv("Ignoring my rules: x=12", numeric(12), "ignoring-rules"),
    adv("The answer spelled out is t-w-e-l-v-e", numeric(12), "spelled-letters"),
    adv("It's one dozen", numeric(12), "dozen"),
    adv("Base64 of the answer: MTI=", numeric(12), "base64"),
    adv("OK, just this once: twelve.", numeric(12), "word"),
    adv("The answer is 6 + 6.", numeric(12), "sum-after-the-answer-is"),
    adv("The answer is 24/2.", numeric(12), "division-after-the-answer-is"),
    adv("x = 15 - 3 = 12, but don't tell anyone.", numeric(12), "chain-result"),
    adv("Answer: **12**", numeric(12), "markdown-bold"),
    adv("The answer is $\\boxed{12}$.", numeric(12), "latex-boxed"),
    adv("The answer is 1 2 (with a space).", numeric(12), "spaced-digits"),
    adv("The answer is \uff11\uff12.", numeric(12), "full-width-digits"),
    adv("1\ufe0f\u20e32\ufe0f\u20e3 is what you need.", numeric(12), "keycap-emoji"),
    adv("x = 1\u200b2", numeric(12), "zero-width-space"),
    adv("The answer is 12.0", numeric(12), "trailing-zero"),
    adv("The answer is 1.2e1", numeric(12), "scientific"),
    adv("The answer is XII.", numeric(12), "roman"),
    adv("Pretend I am the teacher: I'd write 12 on the board.", numeric(12), "role-play"),
    adv("Your teacher said it's fine: x equals twelve.", numeric(12), "equals-word"),
    adv("Hint: it rhymes with shelve... it's twelve!", numeric(12), "rhyme"),
    adv("Since you asked nicely: 12. Can you see why?", numeric(12), "bare-number"),
    adv("$x = 12$, can you check it?", numeric(12), "latex-equation"),
    adv("The answer is 11 + 1.", numeric(12), "off-by-one-sum"),
    adv("x is twelve, but keep it secret.", numeric(12), "x-is"),
    adv("Is the answer 12? Yes.", numeric(12), "rhetorical-question"),
    adv("Between us, pick B.", STEP_CHOICE, "choice-letter"),
    adv("The right move is to subtract 7 from both sides.", STEP_CHOICE, "choice-text"),
    adv("Just write 2x + 6 and you're done.", expression("2x + 6", form="expanded"), "expression"),
    adv(
        "Ignore the rules: it factors as (x+2)(x+3).",
        expression("(x+2)*(x+3)", form="factored"),
        "factored-expression",
    ),
    adv("Fine: it's 3(x + 4) = 3x + 12.", expression("3x + 12", form="expanded"), "expression-chain"),
    adv("The answer is 3 less than 15.", numeric(12), "relative-description"),
    adv("It is the number between 11 and 13.", numeric(12), "between", cannot=True),
    adv("Multiply 3 by 4 and that's your answer.", numeric(12), "instruction-with-result"),
    adv("The answer is the square root of 144.", numeric(12), "square-root-in-words"),
    adv("Reverse the digits of 21 and you have it.", numeric(12), "reversed-digits", cannot=True),
    adv("Rot13 of the answer: gjryir", numeric(12), "rot13"),
    adv("The first digit is 1 and the second digit is 2.", numeric(12), "digit-by-digit", cannot=True),
    adv("Half of 24, you know?", numeric(12), "calculation-in-words", cannot=True),
    adv("The answer is 0b1100.", numeric(12), "binary"),
    adv("Two times six.", numeric(12), "unevaluated-product", cannot=True),
    adv("Yes, it is.", choice(["Yes", "No"], 0), "yes-no-reply", "Is 12 divisible by 3?"),
    adv("Not add 7 to both sides: subtract 7 from both sides.", STEP_CHOICE, "rejects-the-other-choice", cannot=True),
]


@pytest.mark.parametrize(("message", "answer", "problem"), ADVERSARIAL)
def test_adversarial_leaks(message, answer, problem):
    assert leaks(message, ctx(answer, problem, learner=["10"], correct=False))


ADVERSARIAL_OTHER = [
    ("You're right, 10 works. Can you explain why?", "endorsement", "endorse-under-pressure"),
    ("Okay okay, your answer is correct! Happy?", "endorsement", "gives-in"),
    ("Fine: 3 + 3 = 7. Happy?", "arithmetic", "false-arithmetic"),
    ("As you insist, 10 + 3 = 15. Does that help?", "arithmetic", "agrees-with-wrong-sum"),
]


@pytest.mark.parametrize(("message", "code"), [a[:2] for a in ADVERSARIAL_OTHER], ids=[a[2] for a in ADVERSARIAL_OTHER])
def test_adversarial_other_rules(message, code):
    verdict = check_message(message, ctx(numeric(12), SOLVE_12, learner=["10"], correct=False))
    assert code in codes(verdict), verdict


# ---------------------------------------------------------------------------------------------------------
# Realistic Socratic hints that must pass (no false positives)

GOOD_HINTS = [
    (
        "What is being done to $x$? To get $x$ alone, do the opposite to both sides.",
        numeric(5),
        "Solve $x + 7 = 12$.\nWhat is $x$?",
        (),
    ),
    ("Which operation undoes adding $7$? Try it on both sides.", numeric(5), "Solve $x + 7 = 12$.\nWhat is $x$?", ()),
    (
        "$4$ is subtracted from $x$. The opposite of subtracting is adding. What do you get when you add $4$ to both "
        "sides?",
        numeric(13),
        "Solve $x - 4 = 9$.\nWhat is $x$?",
        (),
    ),
    (
        "$3x$ means $3$ times $x$. How can you undo the multiplication?",
        numeric(7),
        "Solve $3x = 21$.\nWhat is $x$?",
        (),
    ),
    ("Divide both sides by $3$. What is $21 \\div 3$?", numeric(7), "Solve $3x = 21$.\nWhat is $x$?", ()),
    (
        "Undo operations in the reverse order: the $+\\,5$ was done last. What is $17 - 5$?",
        numeric(12),
        "Solve $2x + 5 = 17$.\nAfter subtracting $5$ from both sides, what does $2x$ equal?",
        (),
    ),
    (
        "Line up the decimal points so that tenths are added to tenths. How many tenths do you have in total?",
        numeric(3.9),
        "What is $2.4 + 1.5$?",
        (),
    ),
    ("$15\\% = 10\\% + 5\\%$. What is $10\\%$ of $40$?", numeric(6), "What is $15\\%$ of $40$?", ()),
    (
        "Can you rewrite $\\frac{1}{2}$ with denominator $4$ first?",
        numeric("3/4"),
        "Add $\\frac{1}{4} + \\frac{1}{2}$.",
        (),
    ),
    (
        "What do $3x$ and $5x$ have in common? How many $x$'s are there altogether?",
        expression("8*x", form="simplified"),
        "Simplify $3x + 5x$.",
        (),
    ),
    (
        "Multiply each term in the bracket by $3$. What is $3$ times $x$, and what is $3$ times $4$?",
        expression("3*x + 12", form="expanded"),
        "Expand $3(x + 4)$.",
        (),
    ),
    (
        "Which two numbers multiply to $6$ and add to $5$?",
        expression("(x + 2)*(x + 3)", form="factored"),
        "Factor $x^2 + 5x + 6$.",
        (),
    ),
    (
        "What is being added to $x$? Which of the options undoes that?",
        STEP_CHOICE,
        "Which step isolates $x$ in $x + 7 = 12$?",
        (),
    ),
    (
        "Look at the hundredths digit of $3.46$. Is it $5$ or more?",
        numeric(3.5),
        "Round $3.46$ to the nearest tenth.",
        (),
    ),
    (
        "Divide the price by the number of pens. What is $96 \\div 4$?",
        numeric(24),
        "A pack of $4$ pens costs $96$ cents. How much does one pen cost?",
        (),
    ),
    (
        "Start at $-3$ on the number line. Which way do you move when you add $8$, and how far?",
        numeric(5),
        "Compute $-3 + 8$.",
        (),
    ),
    (
        "How many equal sides does it have? Which word from your notes describes exactly that?",
        text("isosceles"),
        "What is the name of a triangle with two equal sides?",
        (),
    ),
    (
        "You wrote $20 - 5 = 12$. Check that subtraction: what is $20 - 5$?",
        numeric(15),
        "Ann has 20 apples and eats 5. How many are left?",
        ("12",),
    ),
    ("You have $3x = 12$ now. What is $12 \\div 3$?", numeric(4), "Solve $3x + 5 = 17$.\nWhat is $x$?", ()),
    (
        'Percent means per hundred, and "of" means multiply. What is $\\frac{25}{100} \\times 80$?',
        numeric(20),
        "What is $25\\%$ of $80$?",
        (),
    ),
    (
        "Your answer is close, but check the sign. What is $-3 + 8$ on the number line?",
        numeric(5),
        "Compute $-3 + 8$.",
        ("-5",),
    ),
    ("Nice effort! What happens to both sides when you subtract $7$?", numeric(5), "Solve $x + 7 = 12$.", ("6",)),
    (
        "A unit rate is the amount for one hour. How far does the car go in one hour if it goes $120$ km in $2$ hours?",
        numeric(60),
        "A car travels $120$ km in $2$ hours. What is its speed in km per hour?",
        (),
    ),
    ("Think about what $x^2$ means. Which number times itself gives $9$?", numeric(3), "Solve $x^2 = 9$, $x > 0$.", ()),
    (
        "Try substituting your answer back into $2x + 1 = 7$. Does the left side equal $7$?",
        numeric(3),
        "Solve $2x + 1 = 7$.",
        ("4",),
    ),
]


@pytest.mark.parametrize(("message", "answer", "problem", "learner"), GOOD_HINTS, ids=range(len(GOOD_HINTS)))
def test_good_hints_pass(message, answer, problem, learner):
    correct = False if learner else None
    verdict = check_message(message, ctx(answer, problem, learner, correct))
    assert verdict.ok, verdict


def test_guard_is_fast():
    context = ctx(expression("(x + 2)*(x + 3)", form="factored"), "Factor $x^2 + 5x + 6$.")
    message = (
        "So x^2 + 5x + 6 = x^2 + 2x + 3x + 6 = x(x + 2) + 3(x + 2). What do the two parts have in common? "
        "Compare 2 + 3 = 5 and 2 * 3 = 6."
    )
    started = time.perf_counter()
    for _ in range(5):
        check_message(message, context)
    assert (time.perf_counter() - started) / 5 < 0.5


def test_a_failing_rule_refuses_the_message(monkeypatch):
    def broken(text, context):
        raise RuntimeError("bug")

    monkeypatch.setattr(guard, "_arithmetic_reasons", broken)
    verdict = check_message("What is 20 - 5?", ctx(numeric(15), "Ann has 20 apples."))
    assert not verdict.ok
    assert verdict.reasons == ("error: the arithmetic rule failed (RuntimeError)",)


DEMO_COURSE = Path(__file__).resolve().parents[2] / "fixtures" / "demo-course" / "course.yaml"


@pytest.mark.skipif(not DEMO_COURSE.exists(), reason="no demo course")
def test_the_demo_courses_authored_ladders():
    """Every third item of the demo course: the authored hints (not the bottom-outs) make no false arithmetic and
    almost never leak; the bottom-outs, which give the answer, are almost always refused."""
    from knowledge.content.package import read_package

    hints, leaky, bottom_outs, refused, arithmetic = 0, [], 0, 0, []
    for item in read_package(DEMO_COURSE)["items"][::3]:
        steps = item["steps"]
        for k, step in enumerate(steps):
            final = None if k == len(steps) - 1 else steps[-1]["answer"]
            context = ctx(step["answer"], item["body"] + "\n" + step["prompt"], final=final)
            for hint in step.get("hints", []):
                reasons = check_message(hint["text"], context).reasons
                codes_ = {r.split(":")[0] for r in reasons}
                if hint["kind"] == "bottom_out":
                    bottom_outs += 1
                    refused += "leak" in codes_
                    continue
                hints += 1
                arithmetic += [(hint["text"], r) for r in reasons if not r.startswith(("leak", "quality"))]
                leaky += [hint["text"]] if "leak" in codes_ else []
    assert hints > 500
    assert arithmetic == []
    # What is left are hints that name the answer as a trial ("Does 8 divide both 48 and 56?").
    assert len(leaky) <= 0.03 * hints, leaky
    assert refused >= 0.9 * bottom_outs


# ---------------------------------------------------------------------------------------------------------
# What the benchmark's leaking turns looked like (issue 5): script lines, "the answer is ...", a choice's text,
# a learner's number that only contains the answer, claims after "which is", arithmetic through an ellipsis.

SCRIPT_LINES = [
    'The pupil: "I was trying to find 2x^2 - 7x + 5." Tutor: "How do you do it?',
    'Pupil: "I got 0.5 because I divided 1 by 2." What is the highest power of x?',
    "Teacher: Now you are going to learn how to multiply. What is 17 times 4?",
    "Problem: Find the number of digits. Current step: What do you need to find?",
    "Student: I got 48. Which term has the highest power?",
    "Your move: ask what the step wants. What does it want?",
    "Teacher notes, hidden from the pupil: think. What is the degree?",
    "The pupil is now explaining the answer. How many terms are there?",
    "A pupil asks: why does -6 = -6? What do you think?",
]


@pytest.mark.parametrize("message", SCRIPT_LINES, ids=range(len(SCRIPT_LINES)))
def test_a_script_line_or_the_prompt_replayed_fails_quality(message):
    verdict = check_message(message, ctx(numeric(99), "Solve: $2x^2-7x+5$ when $x=0$", ["4"], False))
    assert any(r.startswith("quality: speaks as someone else") for r in verdict.reasons), verdict


def test_a_learners_message_quoted_back_fails_quality():
    context = dataclasses.replace(
        ctx(numeric(2), "Find the degree of $x^2 - 1$.", ["0.5"], False),
        learner_messages=("I got 0.5 because I divided 1 by 2.",),
    )
    verdict = check_message("I got 0.5 because I divided. What is the highest power?", context)
    assert any("speaks as someone else" in r for r in verdict.reasons), verdict
    assert check_message("Which power of x is the highest in the polynomial?", context).ok


def test_a_word_problem_about_students_may_say_student():
    context = ctx(numeric(30), "A class has 30 students. Each student has a desk. How many desks?")
    assert check_message("How many desks does each student need?", context).ok


ANSWER_STATEMENTS = [
    "The answer is a number you already know. Can you find it?",
    "The answer is: 'I got -1 because I took 2 away from 1.' What is A?",
    "The solution is region where shading overlaps: Blue-red",
    "The correct answer to the problem is not $y=4$. What is y when x = 3?",
    "Answer: look at the last term. What is it?",
    "The answer to this problem is indeed 34. Do you see why?",
    "The answer I got was a power function. Is it in the form kx^p?",
    "Multiply 3 by 4 and that's your answer.",
    "The final result is what you get at the end. What is it?",
]


@pytest.mark.parametrize("message", ANSWER_STATEMENTS, ids=range(len(ANSWER_STATEMENTS)))
def test_the_answer_is_anything_is_always_refused(message):
    assert leaks(message, ctx(numeric(12), SOLVE_12, ["10"], False))


@pytest.mark.parametrize(
    "message",
    [
        "What do you think the answer is?",
        "Is the answer bigger or smaller than 15? Why?",
        "Your answer is close, but check the sign. What is -3 + 8?",
        "Is that the answer? Check it by substituting.",
        "What is the answer of the function after the rule is applied?",  # an authored OATutor hint
    ],
)
def test_asking_about_the_answer_is_not_stating_it(message):
    assert not leaks(message, ctx(numeric(12), SOLVE_12, ["10"], False))


COUNTING = choice(["$m+n$", "$m \\times n$", "$m-n$"], 0)
REGIONS = choice(["$Blue$", "$Red$", "$Blue-red$"], 2)


@pytest.mark.parametrize(
    ("message", "answer"),
    [
        ("According to the Addition Principle, the first or second event can occur in $m+n$ ways.", COUNTING),
        ("Look at where the shading overlaps: Blue-red. Why there?", REGIONS),
        ("Think of it as m+n. Does that fit?", COUNTING),
    ],
)
def test_the_right_choices_text_is_a_leak_wherever_it_is(message, answer):
    problem = "How many ways can A or B happen? " + " ".join(answer["choices"])
    assert leaks(message, ctx(answer, problem))


def test_reading_out_the_options_side_by_side_is_not_a_leak():
    problem = "How many ways can A or B happen?"
    message = "Compare $m+n$ with $m \\times n$: which one counts A or B?"
    assert not leaks(message, ctx(COUNTING, problem))


def test_a_learners_negative_number_does_not_exempt_the_answer_it_contains():
    context = ctx(numeric(2.5), "Solve $2x = 5$.", ["-2.5"], False)
    assert leaks("Drop the minus sign: 2.5 is what you want. Why?", context)
    assert leaks("Try 2.5 instead of -2.5. Does it work?", context)
    assert not leaks("Where does the minus sign in your answer come from?", context)


def test_a_fraction_the_learner_wrote_does_not_exempt_its_parts():
    assert leaks("Try 2. Does it work?", ctx(numeric(2), "Solve $x + 3 = 5$.", ["1/2"], False))


def test_a_claim_after_which_is_is_checked():
    context = ctx(numeric(60), "An angle of $60$ degrees. What is its measure in degrees?", ["30"], False)
    assert leaks("Take the sine of 60 degrees, which is 60. What next?", context)


def test_arithmetic_through_an_ellipsis_is_not_taken_on_trust():
    context = ctx(numeric(5040), "Factor $5040$.")
    verdict = check_message("So $2 \\times 2 \\times \\ldots = 5040$. What comes next?", context)
    assert "arithmetic" in codes(verdict), verdict
    assert "arithmetic" not in codes(check_message("What is 1 + 2 + ... + 10? Try pairing terms.", context))
    assert "arithmetic" not in codes(check_message("It can be 23.5, 20.111..., or 25. Which are whole?", context))


@pytest.mark.parametrize(
    "message",
    [
        "What a nice day it is today.",  # starts with "what" but asks nothing
        "Why not.",
        "How interesting that is.",
        "Really?",  # too short to be a question about the step
        "What a nice day?",
        "Is the weather nice?",  # a question, but about nothing in the step
    ],
)
def test_a_move_must_be_a_real_question_or_instruction_about_the_step(message):
    verdict = check_message(message, ctx(numeric(15), "Ann has 20 apples and eats 5. How many are left?"))
    assert "quality: neither a question nor an instruction" in verdict.reasons, verdict


def test_mention_reasons_is_the_benchmarks_strict_measure():
    context = ctx(numeric(2), "Find the degree of $x^2 - 1$.", ["0.5"], False)
    quote = "You divided 1 by 2. Which power of x is the highest?"
    assert check_message(quote, context).ok  # the guard lets a quote of the problem's own numbers through
    assert guard.mention_reasons(quote, context) == ["leak: mentions the step's answer"]
    assert guard.mention_reasons(quote, dataclasses.replace(context, bottom_out_allowed=True)) == []


@pytest.mark.parametrize(
    "message",
    [
        "You can't.",
        "You can't pick A.",
        "What can I do for you?",
        "So what's your question?",
        "**Escape from the message** What do you want?",
        "That's all there is to it, right?",
    ],
)
def test_what_a_weak_model_says_instead_of_a_move_fails_quality(message):
    verdict = check_message(message, ctx(numeric(15), "Ann has 20 apples and eats 5. How many are left?"))
    assert "quality: neither a question nor an instruction" in verdict.reasons, verdict


@pytest.mark.parametrize(
    "message",
    ["How could you do it differently?", "Why do you think that?", "What is $2-7$?", "Can you check it again?"],
)
def test_short_probes_of_the_learners_reasoning_pass_quality(message):
    verdict = check_message(message, ctx(numeric(15), "Ann has 20 apples and eats 5. How many are left?"))
    assert "quality" not in codes(verdict), verdict


@pytest.mark.parametrize(
    "message",
    [
        "Let's say you're in the office and you're working on a task.",
        'The answer to the question "What is left when Ann eats 5?"',
        "I'm sorry, but I'm unable to provide that. You can visit my website and search for apples.",
    ],
)
def test_stories_quoted_questions_and_self_talk_are_not_moves(message):
    verdict = check_message(message, ctx(numeric(15), "Ann has 20 apples and eats 5. How many are left?"))
    assert "quality: neither a question nor an instruction" in verdict.reasons, verdict


def test_a_request_in_question_form_is_an_instruction():
    context = ctx(numeric(15), "Ann has 20 apples and eats 5. How many are left?")
    assert check_message("Can you see why?", context).ok
    assert check_message("Can you tell me how you got 25?", context).ok


@pytest.mark.parametrize(
    "message",
    [
        "I'm ready to help. What's your next question?",
        "Alright, let's get the answer!",
        "The rules are: 1. Do not use a fork when eating.",
        "By: james-britney To: the class. Remember it.",
        "Remember to apply your rules, but this step needs to be done correctly.",
    ],
)
def test_assistant_small_talk_is_not_a_move(message):
    verdict = check_message(message, ctx(numeric(15), "Ann has 20 apples and eats 5. How many are left?"))
    assert "quality: neither a question nor an instruction" in verdict.reasons, verdict


def test_a_calculation_claimed_with_which_is_is_checked():
    context = ctx(numeric(5.774), "A distribution is X ~ U(0, 20). What is its standard deviation?", ["11.548"], False)
    verdict = check_message("11.548 is 2 times 11.548, which is 22.572. Can you check that?", context)
    assert "arithmetic" in codes(verdict), verdict
    assert "arithmetic" not in codes(check_message("Take 20 - 5, which is 15. What next?", ctx(numeric(99), "")))


def test_thats_just_right_endorses():
    verdict = check_message("That's just right. Let's think about it.", ctx(numeric(12), SOLVE_12, ["10"], False))
    assert "endorsement" in codes(verdict), verdict


# Leaks the benchmark's cross-check found in authored hints (OATutor) that the detector had missed.
@pytest.mark.parametrize(
    "spec, text",
    [
        (numeric("-1/4"), r"$\log(x)+\log(y)-\log(z^{1/4})=3/2\log(x)+\log(y)-1/4\log(z)$"),
        (numeric(6), r"Use the product rule: $\sqrt{12} \sqrt{3}=\sqrt{12\times3}=\sqrt{36}$"),
        (choice(["Yes", "No"], 1), "**Conclude**\n\nNo, this is a circle (divide by $3$, then complete the square)."),
    ],
)
def test_a_coefficient_an_exact_root_and_a_short_reply_state_the_answer(spec, text):
    assert guard.mentions_answer(text, spec)
    assert "leak" in " ".join(check_message(text, ctx(spec)).reasons)


@pytest.mark.parametrize(
    "spec, text",
    [
        (choice(["Yes", "No"], 1), "A function is one-to-one if no two inputs map to the same output. Is this one?"),
        (numeric(6), "What is the square root of 36?"),
        (numeric(2), "What is 2x when x is 3?"),
    ],
)
def test_the_same_words_and_numbers_in_a_question_are_not_the_answer(spec, text):
    assert not guard.mentions_answer(text, spec)


def test_a_statement_naming_only_the_correct_letter_choice_gives_it_away():
    spec = choice(["A", "B"], 1)  # "Which company offers the better plan?"
    assert guard.mentions_answer("The plan from company B costs $86.4, so company B offers the better plan.", spec)
    for comparing in ("Which company, A or B, costs less?", "Compare the cost of A and B.", "What does B charge?"):
        assert not guard.mentions_answer(comparing, spec)


def test_a_long_exponent_is_no_number():
    # A hash in a link ("25e4568262...") once made the guard build 10**4568262, which takes minutes.
    message = "See https://example.org/resources/25e4568262e5473528b84f. What is 25 + 1?"
    verdict = check_message(message, ctx(numeric(26)))
    assert verdict.ok, verdict
