"""The picture of one window: logins per minute above, device types below, as a small PNG.

Rendered with matplotlib's Agg backend (no display needed, safe in a Dagster run process). matplotlib is
imported when a chart is drawn, not when the module is imported: loading the Dagster definitions should not
pay for it. The PNG is kept small (about 20-40 KB) because it is also embedded in the asset's metadata.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from orchestration.insights.aggregates import MinuteCount, Share


def render_window_chart(minutes: Sequence[MinuteCount], device_types: Sequence[Share], title: str, path: Path) -> Path:
    """Draw the chart of one window into `path` (folders created) and return `path`."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure  # a bare Figure: no pyplot global state shared between runs

    figure = Figure(figsize=(8, 4.5), dpi=80, layout="constrained")
    per_minute, devices = figure.subplots(2, 1, height_ratios=(2, 1))

    labels = [datetime.fromtimestamp(m.minute_start_ms / 1000, tz=UTC).strftime("%H:%M") for m in minutes]
    per_minute.bar(range(len(minutes)), [m.count for m in minutes], width=0.9, color="#3b75af")
    step = max(1, len(minutes) // 12)
    per_minute.set_xticks(range(0, len(minutes), step), labels[::step])
    per_minute.set_ylabel("logins / minute")
    per_minute.set_title(title)

    shown = list(device_types)[:8]
    devices.barh([s.value for s in shown][::-1], [s.count for s in shown][::-1], color="#e1812c")
    devices.set_xlabel("logins by device type")
    if not shown:
        devices.text(0.5, 0.5, "no records in this window", ha="center", va="center", transform=devices.transAxes)

    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def markdown_image(path: Path, alt: str) -> str:
    """The PNG as a markdown image with a base64 data URI, so the metadata shows it without file access."""
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"![{alt}](data:image/png;base64,{encoded})"
