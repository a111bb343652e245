"""Server-rendered SVG charts: no JavaScript, no network fetch; each has its numbers in a table too."""

from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

WIDTH, HEIGHT, PAD = 720, 220, 28


def weekly_bars_svg(trend: list[dict]) -> str:
    """Grouped bars: created (dark) and resolved (green) per week."""
    top = max([1] + [max(w["created"], w["resolved"]) for w in trend])
    slot = (WIDTH - 2 * PAD) / max(1, len(trend))
    bar = slot * 0.38
    bars = []
    for index, week in enumerate(trend):
        x = PAD + index * slot
        for offset, key, colour in ((0, "created", "#14213d"), (bar, "resolved", "#1e7a3c")):
            height = (HEIGHT - 2 * PAD) * week[key] / top
            bars.append(
                (
                    f"{x + offset:.1f}",
                    f"{HEIGHT - PAD - height:.1f}",
                    f"{bar:.1f}",
                    f"{height:.1f}",
                    colour,
                    f"{week['week']:%d %b}: {week[key]} {key}",
                )
            )
        bars.append(None)
    rects = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
        (b for b in bars if b is not None),
    )
    labels = format_html_join(
        "",
        '<text x="{}" y="{}" font-size="10" text-anchor="middle">{}</text>',
        ((f"{PAD + i * slot + bar:.1f}", HEIGHT - 8, f"{w['week']:%d %b}") for i, w in enumerate(trend)),
    )
    return format_html(
        '<svg role="img" aria-labelledby="trend-title" viewBox="0 0 {} {}" width="100%" class="chart">'
        '<title id="trend-title">Investigations created and resolved per week, last {} weeks (max {} a week)</title>'
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999"/>{}{}'
        '<text x="{}" y="14" font-size="11">max {}</text></svg>',
        WIDTH,
        HEIGHT,
        len(trend),
        top,
        PAD,
        HEIGHT - PAD,
        WIDTH - PAD,
        HEIGHT - PAD,
        rects,
        labels,
        PAD,
        top,
    )


def funnel_svg(steps: list[dict]) -> str:
    top = max([1] + [s["count"] for s in steps])
    rows = []
    for index, step in enumerate(steps):
        width = (WIDTH - 260) * step["count"] / top
        y = 10 + index * 34
        rows.append((y + 16, step["label"], 180, y, f"{width:.1f}", step["count"]))
    body = format_html_join(
        "",
        '<text x="0" y="{}" font-size="12">{}</text><rect x="{}" y="{}" width="{}" height="22" fill="#1f5fbf"/>',
        ((r[0], r[1], r[2], r[3], r[4]) for r in rows),
    )
    return format_html(
        '<svg role="img" aria-label="Onboarding funnel" viewBox="0 0 {} {}" width="100%" class="chart">{}</svg>',
        WIDTH,
        20 + 34 * len(steps),
        body if rows else mark_safe(""),
    )
