from django import template

from tutor.rendering import render_math_markdown

register = template.Library()


@register.filter
def mathdown(text: str):
    """Render item text (Markdown with $LaTeX$) as safe HTML."""
    return render_math_markdown(text)


@register.filter
def percent(p: float) -> int:
    return round(100 * (p or 0))


@register.filter
def band(p: float) -> str:
    """MATHia-style mastery bands: proficient (>= 95 %), near (70-94 %), needs help (< 70 %)."""
    if p >= 0.95:
        return "proficient"
    return "near" if p >= 0.70 else "needs-help"
