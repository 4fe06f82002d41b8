"""Charts drawn on the server as inline SVG: no JavaScript, no CDN, readable without CSS."""
from __future__ import annotations

import math
from datetime import date

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 × 10^n at least `value` (for a tidy top gridline)."""
    if value <= 1:
        return 1
    magnitude = 10 ** int(math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover


def bar_chart(
    series: list[tuple[date, int]],
    *,
    width: int = 640,
    height: int = 180,
    label: str = "handoffs",
    css_class: str = "console-chart",
) -> SafeString:
    """A bar per day, a gridline at the top and the middle, a date label under a few bars.

    Each bar carries a <title> ("12 handoffs on 3 Mar"), which browsers show on hover and
    screen readers read out.
    """
    left, right, top, bottom = 36, 8, 10, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_ceiling(max((count for _, count in series), default=0))
    n = max(len(series), 1)
    slot = plot_w / n
    bar_w = max(1.0, slot * 0.72)
    total = sum(count for _, count in series)

    grid = []
    for fraction in (0.0, 0.5, 1.0):
        y = top + plot_h - plot_h * fraction
        value = peak * fraction
        value_label = f"{value:g}" if fraction else "0"
        grid.append((f"{left}", f"{y:.1f}", f"{width - right}", f"{y:.1f}", f"{left - 6}", f"{y + 4:.1f}", value_label))
    grid_svg = format_html_join(
        "",
        '<line class="grid" x1="{}" y1="{}" x2="{}" y2="{}"/><text class="axis" x="{}" y="{}" text-anchor="end">{}</text>',
        grid,
    )

    label_every = max(1, math.ceil(n / 8))
    bars, ticks = [], []
    for index, (day, count) in enumerate(series):
        x = left + index * slot + (slot - bar_w) / 2
        bar_h = plot_h * count / peak if peak else 0
        y = top + plot_h - bar_h
        when = f"{day.day} {day:%b}"
        bars.append((f"{x:.1f}", f"{y:.1f}", f"{bar_w:.1f}", f"{bar_h:.1f}", f"{count} {label} on {when}"))
        if index % label_every == 0 or index == n - 1 and n <= 8:
            ticks.append((f"{x + bar_w / 2:.1f}", f"{height - 6}", when))
    bars_svg = format_html_join(
        "", '<rect class="bar" x="{}" y="{}" width="{}" height="{}" rx="1.5"><title>{}</title></rect>', bars
    )
    ticks_svg = format_html_join("", '<text class="axis" x="{}" y="{}" text-anchor="middle">{}</text>', ticks)
    empty = (
        format_html(
            '<text class="empty" x="{}" y="{}" text-anchor="middle">No {} in this period</text>',
            left + plot_w / 2,
            top + plot_h / 2,
            label,
        )
        if total == 0
        else mark_safe("")
    )
    return format_html(
        '<svg class="{}" viewBox="0 0 {} {}" width="100%" role="img" aria-label="{}" '
        'xmlns="http://www.w3.org/2000/svg">{}{}{}{}</svg>',
        css_class,
        width,
        height,
        f"{total} {label} over {len(series)} days",
        grid_svg,
        bars_svg,
        ticks_svg,
        empty,
    )
