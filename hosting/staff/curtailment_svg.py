"""The curtailment event's timeline as inline SVG: target and achieved MW over time, the
deadline marked. Built from hosting.staff.svg's blocks (escaped text, no script, no CDN)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.utils.safestring import SafeString

from hosting.curtailment.reports import TimelinePoint
from hosting.staff.svg import (
    INK,
    LINE,
    MUTED,
    Linear,
    _axis_label,
    _n,
    _tick_label,
    document,
    el,
    legend,
    nice_ticks,
    text,
    time_ticks,
)

TARGET = "#cf222e"
ACHIEVED = "#2171b5"
MINUTE_STEPS = tuple(dt.timedelta(minutes=m) for m in (1, 2, 5, 10, 15, 30))


def event_ticks(start: dt.datetime, end: dt.datetime, most: int = 8) -> list[dt.datetime]:
    """Round instants across [start, end]: minutes for an event of minutes, else the
    telemetry charts' hours and days."""
    step = next((s for s in MINUTE_STEPS if (end - start) / s <= most), None)
    if step is None:
        return time_ticks(start, end, most)
    minutes = int(step.total_seconds() // 60)
    tick = start.replace(second=0, microsecond=0)
    tick -= dt.timedelta(minutes=tick.minute % minutes)
    ticks = []
    while tick <= end:
        if tick >= start:
            ticks.append(tick)
        tick += step
    return ticks


def fmt_mw(value: float, step: float) -> str:
    """A tick in MW with as many decimals as the step needs (0.005 is not "0")."""
    places = 0
    while places < 4 and abs(step * 10**places - round(step * 10**places)) > 1e-9:
        places += 1
    return f"{value:,.{places}f}"


def _steps(xs: Sequence[float], ys: Sequence[float], x_end: float) -> str:
    d = f"M{_n(xs[0])} {_n(ys[0])}"
    for x, y in zip(xs[1:], ys[1:], strict=True):
        d += f"H{_n(x)}V{_n(y)}"
    return d + f"H{_n(x_end)}"


def event_chart(
    points: Sequence[TimelinePoint],
    *,
    start: dt.datetime,
    end: dt.datetime,
    deadline: dt.datetime | None = None,
    width: int = 900,
    height: int = 260,
) -> SafeString:
    """Achieved MW (an area, held until the next sample) against the target (a dashed step
    line), from `start` to `end` (UTC); the deadline is a vertical line."""
    left, right, top, bottom = 56, 12, 34, 28
    if end <= start:
        end = start + dt.timedelta(minutes=1)
    x = Linear(start.timestamp(), end.timestamp(), left, width - right)
    high = max([0.0, *(p.target_mw for p in points), *(p.achieved_mw for p in points)])
    ticks = nice_ticks(high * 1.1 if high else 1.0, 4)
    y = Linear(0, ticks[-1], height - bottom, top)
    parts: list[str] = []
    for t in ticks:
        parts.append(el("line", x1=float(left), y1=y(t), x2=float(width - right), y2=y(t), stroke=LINE))
        parts.append(text(left - 6, y(t) + 4, fmt_mw(t, ticks[1] - ticks[0]), text_anchor="end"))
    for tick in event_ticks(start, end):
        tx = x(tick.timestamp())
        parts.append(el("line", x1=tx, y1=y(0), x2=tx, y2=y(0) + 4, stroke=MUTED))
        parts.append(_axis_label(tx, y(0) + 16, _tick_label(tick, end - start), width))
    if points:
        xs = [x(max(p.at, start).timestamp()) for p in points]
        x_end = float(width - right)
        achieved = _steps(xs, [y(p.achieved_mw) for p in points], x_end)
        parts.append(el("path", d=achieved + f"V{_n(y(0))}H{_n(xs[0])}Z", fill=ACHIEVED, fill_opacity="0.15"))
        parts.append(el("path", d=achieved, fill="none", stroke=ACHIEVED, stroke_width="2", class_="achieved"))
        target = _steps(xs, [y(p.target_mw) for p in points], x_end)
        parts.append(el("path", d=target, fill="none", stroke=TARGET, stroke_width="2", stroke_dasharray="6 3",
                        class_="target"))  # fmt: skip
    else:
        parts.append(text((left + width - right) / 2, (top + height - bottom) / 2, "no samples yet",
                          text_anchor="middle", class_="empty"))  # fmt: skip
    if deadline is not None and start <= deadline <= end:
        dx = x(deadline.timestamp())
        parts.append(el("line", x1=dx, y1=float(top), x2=dx, y2=y(0), stroke=INK, stroke_dasharray="2 2",
                        class_="deadline"))  # fmt: skip
        parts.append(text(dx + 4, top + 10, f"deadline {deadline:%H:%M}"))
    parts.append(el("line", x1=float(left), y1=y(0), x2=float(width - right), y2=y(0), stroke=MUTED))
    parts.append(text(left, 14, "MW", style=f"fill:{INK}"))
    parts.append(legend(left + 40, 4, [(ACHIEVED, "achieved (measured)"), (TARGET, "target")], line_for="target"))
    label = f"Event timeline: target and achieved MW, {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    return document(width, height, label, *parts, css_class="event-chart")
