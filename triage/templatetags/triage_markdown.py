"""Markdown rendered safely and in linear time: markdown-it-py (CommonMark + tables) -> HTML -> nh3 (an
allow-list sanitiser), so a <script> or onerror= in any field is inert.

Python-Markdown's tables extension was quadratic in the number of blocks (4,000 heading lines: 4.4 s;
16,000: 74 s), so one imported plan could hold a worker for minutes. markdown-it-py is linear, and a
field longer than RENDER_LIMIT is rendered as Markdown up to a line break near the limit, the rest shown
as plain text: a page never spends more than a fraction of a second on one field."""

import nh3
from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe
from markdown_it import MarkdownIt

register = template.Library()
RENDER_LIMIT = 64 * 1024  # characters rendered as Markdown per field
ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "pre",
    "code",
    "blockquote",
    "ul",
    "ol",
    "li",
    "strong",
    "em",
    "del",
    "s",
    "a",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
_markdown = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


@register.filter(name="markdown")
def render_markdown(text: str) -> str:
    if not text:
        return ""
    head, rest = text, ""
    if len(text) > RENDER_LIMIT:
        cut = text.rfind("\n", 0, RENDER_LIMIT)
        cut = cut if cut > RENDER_LIMIT // 2 else RENDER_LIMIT
        head, rest = text[:cut], text[cut:]
    html = nh3.clean(
        _markdown.render(head),
        tags=ALLOWED_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto"},
    )
    if rest:
        html += (
            f'<p class="muted">The next {len(rest) // 1024 or 1} KiB are shown as plain text '
            f"(over {RENDER_LIMIT // 1024} KiB of Markdown is not rendered).</p><pre>{escape(rest)}</pre>"
        )
    return mark_safe(html)
