"""Activity over time: posts counted per minute (or per 5 minutes), drawn as inline SVG bars.

Charts are made at build time, need no JavaScript, and carry a text alternative: the SVG has
role="img", an aria-label, a <title> and a <desc> saying what the bars show, and the busiest slot.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from markupsafe import Markup, escape

WIDTH, HEIGHT, LABEL_H = 600, 120, 16


@dataclass(frozen=True)
class Activity:
    start: datetime  # UTC, the first bucket's start
    step: timedelta
    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.counts)

    def bucket_start(self, index: int) -> datetime:
        return self.start + index * self.step


def activity(
    times: Iterable[datetime], start: datetime, end: datetime, step: timedelta
) -> Activity:
    """Count times in [start, end) per step; times outside are left out."""
    n = max(1, -(-(end - start) // step))  # ceiling division
    counts = [0] * n
    for t in times:
        if start <= t < end:
            counts[(t - start) // step] += 1
    return Activity(start, step, tuple(counts))


def describe(data: Activity, tz: tzinfo) -> str:
    """The chart as a sentence: what it shows, the total and the busiest slot."""
    span = "minute" if data.step == timedelta(minutes=1) else f"{_minutes(data.step)} minutes"
    first = data.start.astimezone(tz)
    last = data.bucket_start(len(data.counts)).astimezone(tz)
    text = f"Posts per {span} from {first:%H:%M} to {last:%H:%M}: {data.total} in all"
    if data.total:
        peak = max(range(len(data.counts)), key=lambda i: (data.counts[i], -i))
        text += f", most ({data.counts[peak]}) at {data.bucket_start(peak).astimezone(tz):%H:%M}"
    return text + "."


def svg(data: Activity, tz: tzinfo, title: str, chart_id: str) -> Markup:
    """An accessible SVG bar chart; every text in it is escaped here."""
    label = describe(data, tz)
    top = max(data.counts, default=0) or 1
    bar_w = WIDTH / len(data.counts)
    bars = []
    for i, count in enumerate(data.counts):
        if not count:
            continue
        h = round((HEIGHT - LABEL_H - 4) * count / top, 1)
        x, y = round(i * bar_w, 2), round(HEIGHT - LABEL_H - h, 1)
        when = data.bucket_start(i).astimezone(tz)
        bars.append(
            f'<rect x="{x}" y="{y}" width="{max(round(bar_w - 1, 2), 0.5)}" height="{h}">'
            f"<title>{when:%H:%M}: {count}</title></rect>"
        )
    ticks = _ticks(data, tz, bar_w)
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}. {escape(label)}" aria-describedby="{chart_id}-d">'
        f'<title id="{chart_id}-t">{escape(title)}</title>'
        f'<desc id="{chart_id}-d">{escape(label)}</desc>'
        f'<line class="axis" x1="0" y1="{HEIGHT - LABEL_H}" x2="{WIDTH}" y2="{HEIGHT - LABEL_H}"/>'
        f'<g class="bars">{"".join(bars)}</g>{ticks}</svg>'
    )


def _ticks(data: Activity, tz: tzinfo, bar_w: float) -> str:
    """Hour (or quarter-hour, for short spans) labels along the bottom."""
    every = 60 if len(data.counts) * _minutes(data.step) > 120 else 15
    out = []
    for i in range(len(data.counts)):
        local = data.bucket_start(i).astimezone(tz)
        if local.minute % every == 0:
            x = round(i * bar_w, 2)
            out.append(f'<text x="{x}" y="{HEIGHT - 3}" aria-hidden="true">{local:%H:%M}</text>')
    return f'<g class="ticks">{"".join(out)}</g>'


def _minutes(step: timedelta) -> int:
    return int(step.total_seconds() // 60)


def sparkline(data: Activity, label: str) -> Markup:
    """A small inline bar chart for a schedule cell; the label says what it shows."""
    w, h = 60, 16
    top = max(data.counts, default=0) or 1
    bar_w = w / len(data.counts)
    bars = "".join(
        f'<rect x="{round(i * bar_w, 2)}" y="{round(h - h * c / top, 1)}" '
        f'width="{max(round(bar_w - 0.5, 2), 0.5)}" height="{round(h * c / top, 1)}"/>'
        for i, c in enumerate(data.counts)
        if c
    )
    text = f"{label}: {data.total} posts, at most {max(data.counts, default=0)} in 5 minutes"
    return Markup(
        f'<svg class="spark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        f'aria-label="{escape(text)}">{bars}</svg>'
    )
