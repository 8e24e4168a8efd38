"""A plan as Dagster shows it: bytes, replicas and leaders per broker before and after, as a table and a chart.

The chart is a small PNG (matplotlib's Agg backend, a bare Figure: no pyplot state between runs)
embedded in Markdown as a base64 data URI, so the run's metadata shows it without file access.
matplotlib is imported when a chart is drawn, not when the definitions load.
"""

from __future__ import annotations

import base64
import io

import dagster as dg

from orchestration.reassignment.planner import Plan

GB = 10**9


def broker_table(plan: Plan) -> dg.MetadataValue:
    """One row per broker: bytes, replicas and preferred leaders before and after, and its role."""
    brokers = sorted(set(plan.bytes_before) | set(plan.bytes_after))
    columns = ["bytes_before", "bytes_after", "replicas_before", "replicas_after", "leaders_before", "leaders_after"]
    schema = dg.TableSchema(
        columns=[dg.TableColumn("broker", "int"), dg.TableColumn("role", "string")]
        + [dg.TableColumn(name, "int") for name in columns]
    )
    records = []
    for b in brokers:
        role = "drained" if b not in plan.brokers else ("added" if plan.replicas_before.get(b, 0) == 0 else "target")
        records.append(
            dg.TableRecord(
                {
                    "broker": b,
                    "role": role,
                    "bytes_before": plan.bytes_before.get(b, 0),
                    "bytes_after": plan.bytes_after.get(b, 0),
                    "replicas_before": plan.replicas_before.get(b, 0),
                    "replicas_after": plan.replicas_after.get(b, 0),
                    "leaders_before": plan.leaders_before.get(b, 0),
                    "leaders_after": plan.leaders_after.get(b, 0),
                }
            )
        )
    return dg.MetadataValue.table(records, schema=schema)


def bytes_chart_png(plan: Plan) -> bytes:
    """Bars of bytes per broker before and after, with the tolerance band drawn across."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    brokers = sorted(set(plan.bytes_before) | set(plan.bytes_after))
    scale, unit = (GB, "GB") if max(plan.bytes_before.values(), default=0) >= GB else (10**6, "MB")
    figure = Figure(figsize=(7, 3.5), dpi=80, layout="constrained")
    axes = figure.subplots()
    positions = range(len(brokers))
    axes.bar([p - 0.2 for p in positions], [plan.bytes_before.get(b, 0) / scale for b in brokers], 0.4, label="before")
    axes.bar([p + 0.2 for p in positions], [plan.bytes_after.get(b, 0) / scale for b in brokers], 0.4, label="after")
    low, high = plan.disk_band()
    axes.axhspan(low / scale, high / scale, color="green", alpha=0.12, label=f"mean +-{plan.tolerance:.0%}")
    axes.set_xticks(list(positions), [str(b) for b in brokers])
    axes.set_xlabel("broker")
    axes.set_ylabel(unit)
    axes.set_title(f"bytes per broker; {plan.bytes_copied / scale:,.1f} {unit} to copy")
    axes.legend(loc="upper right", fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def bytes_chart_markdown(plan: Plan) -> str:
    encoded = base64.b64encode(bytes_chart_png(plan)).decode("ascii")
    return f"![bytes per broker before and after](data:image/png;base64,{encoded})"
