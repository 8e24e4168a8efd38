"""Where the daily reports are written: `KDP_INSIGHTS_REPORTS` when set, else `reports/` beside the
insights database (so under the Dagster instance's storage directory by default, see `insights.store`).

Each day is one `<day>.html` and one `<day>.md`, replaced when the day is reported again. A file is written
to a temporary name and renamed over the old one, so a reader (a person's browser, a mail job) never sees
half a report.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path


def reports_directory(database: Path, explicit: str | None = None) -> Path:
    """`explicit` (KDP_INSIGHTS_REPORTS) when given, else `reports/` beside `database`."""
    return Path(explicit) if explicit else database.parent / "reports"


def write_report(directory: Path, day: date, html: str, markdown: str) -> tuple[Path, Path]:
    """Write the day's HTML and Markdown files (folders created); return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = (directory / f"{day.isoformat()}.html", directory / f"{day.isoformat()}.md")
    for path, text in zip(paths, (html, markdown), strict=True):
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    return paths
