"""Template helpers for the teacher dashboards. The heatmap's body is built here in one pass: a class of 300
learners and 60 skills is 18,000 cells, which Django's template loop renders several times slower."""

import math

from django import template
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import mark_safe

register = template.Library()

BAND_CLASSES = {"proficient": "pr", "near": "ne", "needs-help": "nh", "not-started": "ns"}


@register.simple_tag
def heatmap_rows(heatmap: dict, classroom) -> str:
    """<tr>s of the heatmap: the learner (a link to the drill-down), then P(known) in % per skill, its band as the
    cell's class. The % is rounded down, so that a near 94.9 % never reads 95 like a proficient cell. The hover
    text (learner · skill: value) is added by the page's script from the headers."""
    base = reverse("learner-drilldown", args=[classroom.pk, 0])[: -len("0/")]
    parts = []
    for row in heatmap["rows"]:
        learner = row["learner"]
        parts.append(f'<tr><th scope="row"><a href="{base}{learner.pk}/">{escape(row["name"])}</a></th>')
        for cell in row["cells"]:
            if cell.p_known is None:
                parts.append('<td class="ns">–</td>')  # the legend: – is not started
            else:
                parts.append(
                    f'<td class="{BAND_CLASSES[cell.band]}" data-n="{cell.observations}">'
                    f"{math.floor(100 * cell.p_known + 1e-9)}</td>"
                )
        parts.append("</tr>\n")
    return mark_safe("".join(parts))


@register.simple_tag
def sort_query(heatmap: dict, key: str) -> str:
    """The query string that sorts by `key`: ascending first (who needs help on top), descending on a second click."""
    descending = heatmap["sort"] == key and not heatmap["descending"]
    query = f"?sort={key}" + ("&desc=1" if descending else "") + ("&goals=1" if heatmap["goals_only"] else "")
    return query


@register.simple_tag
def aria_sort(heatmap: dict, key: str) -> str:
    if heatmap["sort"] != key:
        return "none"
    return "descending" if heatmap["descending"] else "ascending"


@register.filter
def band_class(band: str) -> str:
    return BAND_CLASSES.get(band, "ns")


@register.filter
def pct(value) -> str:
    """A share as a whole percentage (rounded down, as the heatmap's), or a dash when there is none."""
    return "–" if value is None else f"{math.floor(100 * value + 1e-9)} %"


@register.filter
def signed(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:+.{digits}f}"


@register.filter
def duration(seconds) -> str:
    """Seconds as 45 s, 3 min 20 s, or 1 h 05 min."""
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
