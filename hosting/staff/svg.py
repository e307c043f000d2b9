"""Server-rendered SVG for the staff dashboards: small functions from figures to markup.

No JavaScript and no chart library: each chart is a string of SVG elements whose text is
escaped here, returned as one safe string for a template to place inline. Steps are drawn
as steps (horizontal, then vertical), because the capacity figures are step functions.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from hosting.staff.figures import ZERO, CircuitLoad, Forecast, SlotCell

SVG_NS = "http://www.w3.org/2000/svg"
INK = "#1d2430"
MUTED = "#5b6675"
LINE = "#d9dee5"

SERIES = {
    "budget": ("#1d2430", "energized budget"),
    "committed": ("#9ecae1", "committed (reserved IT kW × PUE)"),
    "live": ("#2171b5", "live draw (live machines × PUE)"),
    "waitlisted": ("#fdae6b", "waitlisted demand, stacked on committed"),
}

STATUS_COLOURS = {
    "racked": "#d4a72c",
    "testing": "#8250df",
    "live": "#2da44e",
    "failed": "#cf222e",
}
OTHER_STATUS = "#57606a"
EMPTY = "#eaeef2"
UNMEASURED = "#c9d1d9"
# Cold → hot: blue, pale yellow, red (a diverging scale readable by most colour-blind eyes).
HEAT_STOPS = ((0.0, (44, 123, 182)), (0.5, (255, 255, 191)), (1.0, (215, 25, 28)))
LOAD_COLOURS = {"ok": "#2da44e", "warn": "#d4a72c", "high": "#cf222e"}


# --------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------


def _n(value: float) -> str:
    """A coordinate: one decimal, no trailing zeros."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def attrs(**kwargs) -> str:
    """` key="value"` pairs, escaped; trailing underscores dropped, other underscores → dashes."""
    parts = []
    for key, value in kwargs.items():
        if value is None:
            continue
        name = key.rstrip("_").replace("_", "-")
        parts.append(f' {name}="{escape(_n(value) if isinstance(value, float) else value)}"')
    return "".join(parts)


def el(tag: str, *children: str, **kwargs) -> str:
    inner = "".join(children)
    return f"<{tag}{attrs(**kwargs)}>{inner}</{tag}>" if inner else f"<{tag}{attrs(**kwargs)}/>"


def text(x: float, y: float, content: str, **kwargs) -> str:
    return f"<text{attrs(x=float(x), y=float(y), **kwargs)}>{escape(content)}</text>"


def title(content: str) -> str:
    return f"<title>{escape(content)}</title>"


def document(width: int, height: int, label: str, *body: str, css_class: str = "") -> SafeString:
    """A standalone <svg> element: every piece of text in `body` was escaped when built."""
    head = f"<svg{attrs(xmlns=SVG_NS, width=str(width), height=str(height), viewBox=f'0 0 {width} {height}')}"
    head += f'{attrs(class_=css_class or None, role="img")} aria-label="{escape(label)}">'
    return mark_safe(head + title(label) + "".join(body) + "</svg>")  # noqa: S308 - all text escaped above


@dataclass(frozen=True)
class Linear:
    """Maps [d0, d1] onto [r0, r1]."""

    d0: float
    d1: float
    r0: float
    r1: float

    def __call__(self, value: float) -> float:
        if self.d1 == self.d0:
            return self.r0
        return self.r0 + (float(value) - self.d0) * (self.r1 - self.r0) / (self.d1 - self.d0)


@dataclass(frozen=True)
class Dates:
    """Maps days in [start, end] onto [r0, r1]."""

    start: dt.date
    end: dt.date
    r0: float
    r1: float

    def __call__(self, day: dt.date) -> float:
        span = (self.end - self.start).days or 1
        return self.r0 + (day - self.start).days * (self.r1 - self.r0) / span


def nice_ticks(high: float, count: int = 5) -> list[float]:
    """0 and round steps (1, 2, 2.5, 5 × 10ⁿ) up to at least `high`."""
    high = float(high)
    if high <= 0:
        return [0.0, 1.0]
    raw = high / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    n = math.ceil(high / step - 1e-9)
    return [round(i * step, 10) for i in range(n + 1)]


def fmt_tick(value: float) -> str:
    return f"{value:,.1f}".removesuffix(".0") if value % 1 else f"{value:,.0f}"


def step_line(xs: Sequence[float], ys: Sequence[float], x_end: float) -> str:
    """Path data: each value held until the next x, then a vertical step."""
    if not xs:
        return ""
    d = [f"M{_n(xs[0])} {_n(ys[0])}"]
    for i in range(1, len(xs)):
        d.append(f"H{_n(xs[i])}V{_n(ys[i])}")
    d.append(f"H{_n(x_end)}")
    return "".join(d)


def step_band(xs: Sequence[float], lows: Sequence[float], highs: Sequence[float], x_end: float) -> str:
    """Path data of the area between two step functions (forward on top, back on the bottom)."""
    if not xs:
        return ""
    top = step_line(xs, highs, x_end)
    back = [f"V{_n(lows[-1])}"]
    for i in range(len(xs) - 1, 0, -1):
        back.append(f"H{_n(xs[i])}V{_n(lows[i - 1])}")
    back.append(f"H{_n(xs[0])}Z")
    return top + "".join(back)


def legend(x: float, y: float, entries: Sequence[tuple[str, str]], *, line_for: str = "", spacing=None) -> str:
    """Swatches in a row: (colour, label); the entry labelled `line_for` shows as a line."""
    parts = []
    cursor = x
    for colour, label in entries:
        if label == line_for:
            parts.append(
                el("line", x1=cursor, y1=y + 5.0, x2=cursor + 14.0, y2=y + 5.0, stroke=colour, stroke_width="2.5")
            )
        else:
            parts.append(el("rect", x=cursor, y=float(y), width="12", height="10", fill=colour))
        parts.append(text(cursor + 18, y + 9, label))
        cursor += spacing or 32 + 6.0 * len(label)
    return el("g", *parts, class_="legend")


# --------------------------------------------------------------------------------------
# The capacity forecast
# --------------------------------------------------------------------------------------


# The waitlist is drawn up to this multiple of the peak budget: one request that dwarfs the
# site would otherwise flatten every other line to the axis. What passes it is labelled.
WAITLIST_CLIP_TIMES = 3
CHAR_W = 6.2  # about how wide one character of the 11 px chart font is


def plotted_top_kw(fc: Forecast) -> tuple[Decimal, bool]:
    """The highest facility kW the chart shows, and whether the waitlist is clipped there:
    everything but the waitlist always fits; the waitlist up to WAITLIST_CLIP_TIMES × the
    peak budget (no clipping when there is no budget to measure against)."""
    pts = fc.points
    peak_budget = max((p.budget_kw for p in pts), default=ZERO)
    if peak_budget <= 0:
        return fc.peak_kw, False
    always = max((max(p.budget_kw, p.committed_kw, p.live_kw) for p in pts), default=ZERO)
    top = max(always, peak_budget * WAITLIST_CLIP_TIMES)
    return min(fc.peak_kw, top), fc.peak_kw > top


def forecast_chart(fc: Forecast, *, width: int = 1100, height: int = 400) -> SafeString:
    """Budget as a step line; committed as an area with live draw darker inside it; the
    waitlist stacked on committed, clipped (and labelled) where it passes a multiple of the
    budget. Facility MW up, months across."""
    left, right, top, bottom = 64, 16, 56, 40
    x = Dates(fc.start, fc.end, left, width - right)
    top_kw, clipped = plotted_top_kw(fc)
    top_mw = float(top_kw) / 1000
    ticks = nice_ticks(top_mw * 1.05)
    y = Linear(0, ticks[-1], height - bottom, top)
    pts = fc.points
    xs = [x(p.day) for p in pts]
    x_end = x(fc.end)
    base = [y(0)] * len(pts)
    committed = [y(float(p.committed_mw)) for p in pts]
    stacked = [y(min(float(p.demand_mw), top_mw)) for p in pts]
    live = [y(float(p.live_mw)) for p in pts]
    budget = [y(float(p.budget_mw)) for p in pts]

    grid = []
    for tick in ticks:
        grid.append(el("line", x1=float(left), y1=y(tick), x2=float(width - right), y2=y(tick), stroke=LINE))
        grid.append(text(left - 6, y(tick) + 4, fmt_tick(tick), text_anchor="end"))
    months = []
    for i, day in enumerate(_month_ticks(fc.start, fc.end)):
        months.append(el("line", x1=x(day), y1=y(0), x2=x(day), y2=y(0) + 4, stroke=MUTED))
        if i % 3 == 0:
            months.append(_axis_label(x(day), y(0) + 16, day.strftime("%b %Y"), width))
    axes = [
        el("line", x1=float(left), y1=y(0), x2=float(width - right), y2=y(0), stroke=MUTED),
        el("line", x1=float(left), y1=float(top), x2=float(left), y2=y(0), stroke=MUTED),
        text(14, (top + height - bottom) / 2, "MW (facility = IT × PUE)", text_anchor="middle",
             transform=f"rotate(-90 14 {_n((top + height - bottom) / 2)})"),
        text(width - right, height - 6, "month", text_anchor="end"),
    ]  # fmt: skip
    series = [
        el("path", d=step_band(xs, base, committed, x_end), fill=SERIES["committed"][0], class_="committed"),
        el("path", d=step_band(xs, base, live, x_end), fill=SERIES["live"][0], class_="live"),
        el("path", d=step_band(xs, committed, stacked, x_end), fill=SERIES["waitlisted"][0], class_="waitlisted",
           fill_opacity="0.85"),
        el("path", d=step_line(xs, budget, x_end), fill="none", stroke=SERIES["budget"][0], stroke_width="2.5",
           class_="budget"),
    ]  # fmt: skip
    if clipped:
        series.append(_clip_marker(fc, xs, x_end, y(top_mw), top_mw))
    key = legend(
        left,
        10,
        [SERIES[k] for k in ("budget", "committed", "live", "waitlisted")],
        line_for=SERIES["budget"][1],
    )
    note = text(left, 42, "Facility MW: IT kW × the site's PUE. Live draw: nameplate W of today's live machines.")
    label = f"Capacity forecast, {fc.name}: {fc.start:%Y-%m-%d} to {fc.end:%Y-%m-%d}"
    return document(width, height, label, *grid, *series, *axes, *months, key, note, css_class="forecast-chart")


def _axis_label(cx: float, cy: float, content: str, width: int) -> str:
    """A label centred under its tick, pulled in where it would run past either edge."""
    half = len(content) * CHAR_W / 2
    if cx + half > width - 2:
        return text(width - 2, cy, content, text_anchor="end")
    if cx - half < 2:
        return text(2, cy, content, text_anchor="start")
    return text(cx, cy, content, text_anchor="middle")


def _clip_marker(fc: Forecast, xs: Sequence[float], x_end: float, y_top: float, top_mw: float) -> str:
    """A dashed edge where the waitlist leaves the chart, and how far it goes."""
    over = [i for i, p in enumerate(fc.points) if float(p.demand_mw) > top_mw]
    peak = max(fc.points, key=lambda p: p.demand_mw)
    parts = []
    for i in over:
        x1 = xs[i]
        x2 = xs[i + 1] if i + 1 < len(xs) else x_end
        parts.append(el("line", x1=x1, y1=y_top, x2=x2, y2=y_top, stroke=INK, stroke_width="2",
                        stroke_dasharray="6 3"))  # fmt: skip
    x0 = xs[over[0]]
    words = (
        f"▲ waitlisted demand off the chart: up to {fmt_tick(float(peak.demand_mw))} MW "
        f"(from {peak.day:%b %Y}); drawn up to {WAITLIST_CLIP_TIMES} × the peak budget"
    )
    anchor_x = min(max(x0 + 4, 70.0), x_end - len(words) * CHAR_W)
    parts.append(text(anchor_x, y_top - 6, words, style=f"fill:{INK}", class_="clip-label"))
    return el("g", title(words), *parts, class_="waitlist-clipped")


def _month_ticks(start: dt.date, end: dt.date) -> list[dt.date]:
    day = start.replace(day=1)
    out = []
    while day <= end:
        if day >= start:
            out.append(day)
        day = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return out


# --------------------------------------------------------------------------------------
# Rack elevation
# --------------------------------------------------------------------------------------


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(c):02x}" for c in rgb)


def heat_colour(temp_c: float, cold_c: float, hot_c: float) -> str:
    """Where `temp_c` falls between cold and hot (clamped), on the blue→yellow→red scale."""
    span = (hot_c - cold_c) or 1.0
    t = min(1.0, max(0.0, (float(temp_c) - cold_c) / span))
    for (t0, c0), (t1, c1) in itertools.pairwise(HEAT_STOPS):
        if t <= t1:
            f = (t - t0) / (t1 - t0)
            r, g, b = (a + (z - a) * f for a, z in zip(c0, c1, strict=True))
            return _hex((r, g, b))
    return _hex(HEAT_STOPS[-1][1])


def status_colour(status: str) -> str:
    return STATUS_COLOURS.get(status, OTHER_STATUS) if status else EMPTY


def _ink_on(fill: str) -> str:
    """Dark or white text, whichever reads on `fill`."""
    r, g, b = (int(fill[i : i + 2], 16) for i in (1, 3, 5))
    return INK if 0.299 * r + 0.587 * g + 0.114 * b > 150 else "#ffffff"


def cell_fill(cell: SlotCell, colour: str, cold_c: float, hot_c: float) -> str:
    """The fill of a slot: by machine status, or by temperature (a pattern when unmeasured)."""
    if cell.empty:
        return EMPTY
    if colour == "temperature":
        return "url(#unmeasured)" if cell.temp_c is None else heat_colour(cell.temp_c, cold_c, hot_c)
    if colour == "power":
        return rack_fill(cell.power_pct, "power")
    if colour == "hashrate":
        return rack_fill(cell.hashrate_pct, "hashrate")
    return status_colour(cell.status)


ROW_H = 18
ROWS_PER_COLUMN = 40
CELL_W = 290


def rack_elevation(
    cells: Sequence[SlotCell], *, name: str, colour: str = "status", cold_c: float = 40.0, hot_c: float = 95.0
) -> SafeString:
    """The rack's slots top to bottom in position order (more columns past 40 slots), each
    a rectangle linking to its machine, with a tooltip; a legend for the chosen colouring."""
    columns = max(1, math.ceil(len(cells) / ROWS_PER_COLUMN))
    rows = min(len(cells), ROWS_PER_COLUMN) or 1
    legend_h = 44
    width = max(columns * (CELL_W + 40), 420)
    height = legend_h + rows * ROW_H + 8
    defs = el(
        "defs",
        el(
            "pattern",
            el("rect", width="6", height="6", fill=UNMEASURED),
            el("path", d="M0 6L6 0", stroke="#8c959f", stroke_width="1.2"),
            id="unmeasured",
            width="6",
            height="6",
            patternUnits="userSpaceOnUse",
        ),
        el(
            "linearGradient",
            *(el("stop", offset=f"{t:.0%}", stop_color=_hex(c)) for t, c in HEAT_STOPS),
            id="heat",
        ),
    )
    body = []
    for i, cell in enumerate(cells):
        col, row = divmod(i, ROWS_PER_COLUMN)
        x0 = col * (CELL_W + 40)
        y0 = legend_h + row * ROW_H
        fill = cell_fill(cell, colour, cold_c, hot_c)
        body.append(text(x0 + 28, y0 + 13, str(cell.position), text_anchor="end"))
        rect = el(
            "rect",
            x=float(x0 + 34),
            y=float(y0 + 1),
            width=str(CELL_W - 34),
            height=str(ROW_H - 2),
            rx="2",
            fill=fill,
            stroke="#ffffff",
            class_="slot",
            data_position=str(cell.position),
            data_status=cell.status or "empty",
        )
        if cell.empty:
            body.append(el("g", title(cell.tooltip), rect, class_="slot-empty"))
            continue
        label = cell.serial + " · " + _cell_label(cell, colour)
        ink = INK if fill.startswith("url(") else _ink_on(fill)
        body.append(
            el(
                "a",
                title(cell.tooltip),
                rect,
                text(x0 + 40, y0 + 13, label, style=f"fill:{ink}"),
                href=cell.href,
                data_machine=str(cell.machine_id),
            )
        )
    key = {"status": _status_legend, "temperature": lambda: _heat_legend(cold_c, hot_c)}.get(
        colour, lambda: _measure_legend(colour)
    )()
    coloured_by = {"status": "machine status", "temperature": "temperature"}.get(
        colour, FLOOR_MEASURES.get(colour, colour)
    )
    label = f"Rack {name}: {len(cells)} slots coloured by {coloured_by}"
    return document(width, height, label, defs, key, *body, css_class="rack-elevation")


def _temp_label(temp_c: float | None) -> str:
    return "not measured" if temp_c is None else f"{temp_c:.0f} °C"


def _cell_label(cell: SlotCell, colour: str) -> str:
    if colour == "status":
        return cell.status
    if colour == "power":
        return "not polled" if cell.power_w is None else f"{cell.power_w:,.0f} W"
    if colour == "hashrate":
        return "not polled" if cell.hashrate_pct is None else f"{cell.hashrate_pct:.0f} % of nominal"
    return _temp_label(cell.temp_c)


def _measure_legend(colour: str) -> str:
    """The scale of a measure from the latest poll (power: measured ÷ nameplate)."""
    stops = HASH_STOPS if colour == "hashrate" else HEAT_STOPS
    ends = ("0 %", "50 %", "100 %") if colour == "hashrate" else ("0 %", "60 %", "120 %+")
    what = "hashrate % of nominal" if colour == "hashrate" else "measured W ÷ nameplate W"
    return el(
        "g",
        el("linearGradient", *(el("stop", offset=f"{t:.0%}", stop_color=_hex(c)) for t, c in stops), id="measure"),
        text(0, 17, what),
        el("rect", x=150.0, y=8.0, width="160", height="12", fill="url(#measure)"),
        text(150, 34, ends[0], text_anchor="start"),
        text(230, 34, ends[1], text_anchor="middle"),
        text(310, 34, ends[2], text_anchor="end"),
        el("rect", x=326.0, y=8.0, width="12", height="12", fill="url(#unmeasured)"),
        text(344, 18, "not polled"),
        class_="legend",
    )


def _status_legend() -> str:
    entries = [(c, s) for s, c in STATUS_COLOURS.items()] + [(EMPTY, "empty")]
    return legend(0, 8, entries, spacing=76)


def _heat_legend(cold_c: float, hot_c: float) -> str:
    mid = (cold_c + hot_c) / 2
    return el(
        "g",
        text(0, 17, "max chip °C"),
        el("rect", x=80.0, y=8.0, width="160", height="12", fill="url(#heat)", class_="heat-scale"),
        text(80, 34, f"{cold_c:.0f}", text_anchor="start"),
        text(160, 34, f"{mid:.0f}", text_anchor="middle"),
        text(240, 34, f"{hot_c:.0f}+", text_anchor="end"),
        el("rect", x=256.0, y=8.0, width="12", height="12", fill="url(#unmeasured)"),
        text(274, 18, "not measured"),
        el("rect", x=360.0, y=8.0, width="12", height="12", fill=EMPTY),
        text(378, 18, "empty"),
        class_="legend",
    )


# --------------------------------------------------------------------------------------
# Circuit load bars
# --------------------------------------------------------------------------------------


def load_bars(loads: Sequence[CircuitLoad], *, width: int = 420) -> SafeString:
    """One bar per circuit: allocated W against usable W (the 80 % continuous limit is 100 %)."""
    row_h, label_w, legend_h = 34, 110, 24
    bar_w = width - label_w - 8
    height = legend_h + max(1, len(loads)) * row_h
    parts = [
        legend(
            0,
            4,
            [
                (LOAD_COLOURS["ok"], "< 75 %"),
                (LOAD_COLOURS["warn"], "75–90 %"),
                (LOAD_COLOURS["high"], "≥ 90 % of usable"),
            ],
            spacing=80,
        )
    ]
    for i, load in enumerate(loads):
        y0 = legend_h + i * row_h
        share = min(float(load.fraction), 1.0)
        summary = f"{load.load_w:,} / {load.usable_w:,} W ({float(load.fraction):.0%})"
        parts.append(
            el(
                "g",
                title(f"circuit {load.name}: {summary} of usable (80 % continuous-load limit)"),
                text(0, y0 + 13, load.name),
                el("rect", x=float(label_w), y=float(y0 + 2), width=str(bar_w), height="14", fill=EMPTY, rx="2"),
                el(
                    "rect",
                    x=float(label_w),
                    y=float(y0 + 2),
                    width=bar_w * share,
                    height="14",
                    fill=LOAD_COLOURS[load.level],
                    rx="2",
                    class_=f"load {load.level}",
                ),
                text(label_w, y0 + 29, summary),
                class_="circuit",
            )
        )
    if not loads:
        parts.append(text(0, legend_h + 14, "No circuits feed this rack's slots."))
    return document(width, height, "Circuit load against usable watts", *parts, css_class="load-bars")


# --------------------------------------------------------------------------------------
# Telemetry over time (fleet and machine charts, portal and staff)
# --------------------------------------------------------------------------------------

TIME_STEPS = (
    dt.timedelta(hours=1), dt.timedelta(hours=3), dt.timedelta(hours=6), dt.timedelta(hours=12),
    dt.timedelta(days=1), dt.timedelta(days=2), dt.timedelta(days=7),
)  # fmt: skip
UNKNOWN_FILL = "#eaeef2"


def time_ticks(start: dt.datetime, end: dt.datetime, most: int = 8) -> list[dt.datetime]:
    """Round instants (UTC) across [start, end], at most `most` of them."""
    span = end - start
    step = next((s for s in TIME_STEPS if span / s <= most), TIME_STEPS[-1])
    anchor = start.replace(minute=0, second=0, microsecond=0)
    if step >= dt.timedelta(days=1):
        anchor = anchor.replace(hour=0)
    elif step > dt.timedelta(hours=1):
        anchor = anchor.replace(hour=anchor.hour - anchor.hour % int(step.total_seconds() // 3600))
    ticks = []
    tick = anchor
    while tick <= end:
        if tick >= start:
            ticks.append(tick)
        tick += step
    return ticks


def _tick_label(tick: dt.datetime, span: dt.timedelta) -> str:
    if span <= dt.timedelta(days=2):
        return tick.strftime("%b %d") if tick.hour == 0 else tick.strftime("%H:%M")
    return tick.strftime("%b %d")


def time_chart(
    points: Sequence[tuple[dt.datetime, float | None]],
    *,
    start: dt.datetime,
    end: dt.datetime,
    step: dt.timedelta,
    unit: str,
    label: str,
    colour: str = "#2171b5",
    reference: float | None = None,
    reference_label: str = "",
    width: int = 720,
    height: int = 200,
    css_class: str = "time-chart",
) -> SafeString:
    """A value over time as steps (each point holds for `step`), an area under it; a point
    with no value (unknown: no poll happened) is a gap shaded grey, never drawn as zero.
    `reference` (e.g. the nominal hashrate) is a dashed line. Times are UTC."""
    left, right, top, bottom = 56, 12, 28, 28
    x = Linear(start.timestamp(), end.timestamp(), left, width - right)
    known = [v for _, v in points if v is not None]
    high = max([*known, reference or 0.0, 0.0])
    ticks = nice_ticks(high * 1.1 if high else 1.0, 4)
    y = Linear(0, ticks[-1], height - bottom, top)
    grid = []
    for t in ticks:
        grid.append(el("line", x1=float(left), y1=y(t), x2=float(width - right), y2=y(t), stroke=LINE))
        grid.append(text(left - 6, y(t) + 4, fmt_tick(t), text_anchor="end"))
    span = end - start
    for tick in time_ticks(start, end):
        grid.append(el("line", x1=x(tick.timestamp()), y1=y(0), x2=x(tick.timestamp()), y2=y(0) + 4, stroke=MUTED))
        grid.append(_axis_label(x(tick.timestamp()), y(0) + 16, _tick_label(tick, span), width))
    gaps: list[str] = []
    runs: list[list[tuple[float, float, float]]] = []
    current: list[tuple[float, float, float]] = []
    for at, value in points:
        x0, x1 = x(max(at, start).timestamp()), x(min(at + step, end).timestamp())
        if value is None:
            gaps.append(el("rect", x=x0, y=float(top), width=max(x1 - x0, 0.5), height=y(0) - top,
                           fill=UNKNOWN_FILL, class_="unknown"))  # fmt: skip
            if current:
                runs.append(current)
                current = []
            continue
        current.append((x0, x1, y(value)))
    if current:
        runs.append(current)
    series = []
    for run in runs:
        d = f"M{_n(run[0][0])} {_n(run[0][2])}"
        for i, (_, x1, _) in enumerate(run):
            d += f"H{_n(x1)}" + (f"V{_n(run[i + 1][2])}" if i + 1 < len(run) else "")
        area = d + f"V{_n(y(0))}H{_n(run[0][0])}Z"
        series.append(el("path", d=area, fill=colour, fill_opacity="0.15", class_="area"))
        series.append(el("path", d=d, fill="none", stroke=colour, stroke_width="1.8", class_="line"))
    if reference is not None:
        series.append(el("line", x1=float(left), y1=y(reference), x2=float(width - right), y2=y(reference),
                         stroke=INK, stroke_dasharray="5 3", class_="reference"))  # fmt: skip
        series.append(text(width - right - 2, y(reference) - 4, reference_label, text_anchor="end"))
    axes = [
        el("line", x1=float(left), y1=y(0), x2=float(width - right), y2=y(0), stroke=MUTED),
        text(left, 14, f"{label} ({unit})", style=f"fill:{INK}"),
    ]
    if not known:
        axes.append(text((left + width - right) / 2, (top + height - bottom) / 2, "no measurements in this span",
                         text_anchor="middle", class_="empty"))  # fmt: skip
    elif gaps:
        axes.append(el("rect", x=float(width - right - 150), y=4.0, width="12", height="10", fill=UNKNOWN_FILL))
        axes.append(text(width - right - 134, 13, "unknown (not polled)"))
    title_text = f"{label}, {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    return document(width, height, title_text, *grid, *gaps, *series, *axes, css_class=css_class)


# --------------------------------------------------------------------------------------
# Floor map: halls → rows → racks, each rack coloured by its latest measure
# --------------------------------------------------------------------------------------

# Hashrate % of nominal: red (none) → yellow → green (all of it).
HASH_STOPS = ((0.0, (215, 25, 28)), (0.5, (255, 255, 191)), (1.0, (26, 150, 65)))
FLOOR_MEASURES = {
    "power": "measured W ÷ booked W",
    "hashrate": "hashrate % of nominal",
    "temperature": "hottest chip °C",
}
RACK_W, RACK_H, ROW_LABEL_W, HALL_GAP = 30, 20, 56, 30


def _scale(t: float, stops) -> str:
    t = min(1.0, max(0.0, t))
    for (t0, c0), (t1, c1) in itertools.pairwise(stops):
        if t <= t1:
            f = (t - t0) / (t1 - t0)
            r, g, b = (a + (z - a) * f for a, z in zip(c0, c1, strict=True))
            return _hex((r, g, b))
    return _hex(stops[-1][1])


def rack_fill(value: float | None, measure: str, cold_c: float = 40.0, hot_c: float = 95.0) -> str:
    """A rack's colour for the chosen measure; the unmeasured pattern when it has none."""
    if value is None:
        return "url(#unmeasured)"
    if measure == "hashrate":
        return _scale(value / 100, HASH_STOPS)
    if measure == "temperature":
        return heat_colour(value, cold_c, hot_c)
    return heat_colour(value, 0.0, 120.0)  # power: % of booked, over 100 % runs red


def floor_map(halls, *, name: str, measure: str = "power") -> SafeString:
    """`halls`: [(hall, [(row, [FloorRack…])…])…] as hosting.staff.floor lays them out.
    Each rack a cell linking to its elevation, coloured by `measure`, with its slot
    utilisation as a dark bar along the bottom and every figure in its tooltip."""
    widest = max((len(racks) for _, rows in halls for _, racks in rows), default=1)
    width = max(ROW_LABEL_W + widest * (RACK_W + 3) + 10, 560)
    legend_h = 48
    parts = []
    y0 = legend_h
    for hall, rows in halls:
        parts.append(text(0, y0 + 12, f"Hall {hall}", style=f"fill:{INK};font-weight:600"))
        y0 += 18
        for row, racks in rows:
            parts.append(text(0, y0 + 14, f"row {row}"))
            for i, rack in enumerate(racks):
                x0 = ROW_LABEL_W + i * (RACK_W + 3)
                fill = rack_fill(rack.value(measure), measure)
                bar = RACK_W * rack.utilisation
                parts.append(
                    el(
                        "a",
                        title(rack.tooltip),
                        el("rect", x=float(x0), y=float(y0), width=str(RACK_W), height=str(RACK_H), rx="2", fill=fill,
                           stroke="#ffffff", class_="rack", data_rack=str(rack.rack_id)),
                        el("rect", x=float(x0), y=float(y0 + RACK_H - 4), width=bar, height="4", fill=INK,
                           fill_opacity="0.7", class_="utilisation"),
                        href=rack.href,
                    )
                )  # fmt: skip
            y0 += RACK_H + 4
        y0 += HALL_GAP
    height = y0 + 4
    defs = el(
        "defs",
        el("pattern", el("rect", width="6", height="6", fill=UNMEASURED),
           el("path", d="M0 6L6 0", stroke="#8c959f", stroke_width="1.2"),
           id="unmeasured", width="6", height="6", patternUnits="userSpaceOnUse"),
        el("linearGradient", *(el("stop", offset=f"{t:.0%}", stop_color=_hex(c)) for t, c in
                               (HASH_STOPS if measure == "hashrate" else HEAT_STOPS)), id="floor-scale"),
    )  # fmt: skip
    ends = {"power": ("0 %", "60 %", "120 %+"), "hashrate": ("0 %", "50 %", "100 %"),
            "temperature": ("40", "68", "95+")}[measure]  # fmt: skip
    key = el(
        "g",
        text(0, 17, FLOOR_MEASURES[measure]),
        el("rect", x=150.0, y=8.0, width="160", height="12", fill="url(#floor-scale)"),
        text(150, 34, ends[0], text_anchor="start"),
        text(230, 34, ends[1], text_anchor="middle"),
        text(310, 34, ends[2], text_anchor="end"),
        el("rect", x=326.0, y=8.0, width="12", height="12", fill="url(#unmeasured)"),
        text(344, 18, "no measurement"),
        el("rect", x=446.0, y=14.0, width="16", height="4", fill=INK),
        text(468, 18, "slots used"),
        class_="legend",
    )
    label = f"Floor map of {name}: racks coloured by {FLOOR_MEASURES[measure]}"
    return document(width, height, label, defs, key, *parts, css_class="floor-map")
