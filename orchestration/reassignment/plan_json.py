"""Kafka's partition-reassignment JSON, written and read.

The format is the one `kafka-reassign-partitions --execute --reassignment-json-file` accepts:
`{"version": 1, "partitions": [{"topic": t, "partition": p, "replicas": [...], "log_dirs": [...]}]}`.
`log_dirs` holds one entry per replica; "any" lets each broker choose its log directory. Output is
sorted by topic and partition, so the same plan always gives the same bytes (diffable, reviewable).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

Partition = tuple[str, int]


def reassignment_json(assignment: Mapping[Partition, Sequence[int]]) -> str:
    """`assignment` (only the partitions to change) as reassignment JSON."""
    partitions = [
        {
            "topic": topic,
            "partition": partition,
            "replicas": list(assignment[topic, partition]),
            "log_dirs": ["any"] * len(assignment[topic, partition]),
        }
        for topic, partition in sorted(assignment)
    ]
    return json.dumps({"version": 1, "partitions": partitions}, indent=2)


def parse_reassignment_json(text: str) -> dict[Partition, tuple[int, ...]]:
    """The assignment in a reassignment JSON document (ours or Kafka's `--generate` output).

    Raises ValueError with the offending entry when the document is not a version-1 reassignment.
    """
    document = json.loads(text)
    if not isinstance(document, dict) or document.get("version") != 1:
        raise ValueError('not a reassignment document: expected {"version": 1, "partitions": [...]}')
    assignment: dict[Partition, tuple[int, ...]] = {}
    for entry in document.get("partitions", []):
        try:
            key = (str(entry["topic"]), int(entry["partition"]))
            replicas = tuple(int(b) for b in entry["replicas"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"malformed partition entry {entry!r}: {error}") from None
        if key in assignment:
            raise ValueError(f"partition {key} appears twice")
        assignment[key] = replicas
    return assignment
