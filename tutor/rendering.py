"""Item text to safe HTML: Markdown with $inline$ and $$display$$ LaTeX.

Math is cut out before Markdown runs (Markdown would eat its backslashes and underscores) and put back
as elements that KaTeX renders in the browser; the HTML is then sanitised, since content can come
from imported packages.
"""

import html
import re

import markdown
import nh3
from django.utils.safestring import SafeString, mark_safe

MATH = re.compile(r"\$\$(.+?)\$\$|\$([^$\n]+?)\$", re.DOTALL)
ALLOWED_ATTRIBUTES = {"span": {"class", "data-tex"}, "div": {"class", "data-tex"}, "img": {"src", "alt"}}


def render_math_markdown(text: str) -> SafeString:
    pieces: list[str] = []

    def stash(match: re.Match) -> str:
        display = match.group(1) is not None
        tex = html.escape(match.group(1) if display else match.group(2), quote=True)
        tag = "div" if display else "span"
        pieces.append(f'<{tag} class="math{" display" if display else ""}" data-tex="{tex}"></{tag}>')
        return f"\x00{len(pieces) - 1}\x00"

    body = markdown.markdown(MATH.sub(stash, text or ""), extensions=["tables"])
    body = re.sub("\x00(\\d+)\x00", lambda m: pieces[int(m.group(1))], body)
    return mark_safe(nh3.clean(body, attributes=ALLOWED_ATTRIBUTES | {"a": {"href"}}))
