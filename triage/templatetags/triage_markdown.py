"""Markdown rendered safely: Markdown -> HTML -> nh3 (an allow-list sanitiser), so a <script> or
onerror= in any field is inert."""

import markdown as markdown_lib
import nh3
from django import template
from django.utils.safestring import mark_safe

register = template.Library()
ALLOWED_TAGS = {
    "p", "br", "hr", "pre", "code", "blockquote", "ul", "ol", "li", "strong", "em", "del", "a",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip


@register.filter(name="markdown")
def render_markdown(text: str) -> str:
    if not text:
        return ""
    html = markdown_lib.markdown(text, extensions=["fenced_code", "tables", "sane_lists"])
    return mark_safe(
        nh3.clean(html, tags=ALLOWED_TAGS, attributes={"a": {"href", "title"}}, url_schemes={"http", "https", "mailto"})
    )
