"""Container health probe of the generator and the converter: does the cluster serve our source topic?

Exit status 0 when, with the container's own KDP_* settings, the brokers answer within the timeout
and every partition of the source topic has a leader; 1 otherwise, with the reason on stderr (Docker
keeps it in `docker inspect`). It checks what these processes need from outside, not their inner
progress: a dead process ends its container anyway, and the restart policy brings it back.
"""

from __future__ import annotations

import sys

from confluent_kafka.admin import AdminClient

from streaming.settings import Settings

TIMEOUT_S = 10.0


def problem(settings: Settings, timeout_s: float = TIMEOUT_S) -> str | None:
    """None when the source topic is served, else what is wrong."""
    # log_level 0: librdkafka's reconnect lines would bury the one-line verdict in the health log.
    admin = AdminClient({**settings.kafka_config(), "log_level": 0})
    try:
        # All topics, not `list_topics(topic)`: a metadata request naming a topic lets a broker with
        # auto.create.topics.enable create it with default partitions, before provisioning could.
        metadata = admin.list_topics(timeout=timeout_s)
    except Exception as error:  # any failure to reach the cluster is the answer
        return f"no metadata from {settings.bootstrap}: {error}"
    topic = metadata.topics.get(settings.source_topic)
    if topic is None or topic.error is not None:
        return f"topic {settings.source_topic}: {topic.error if topic else 'absent'}"
    leaderless = sorted(p.id for p in topic.partitions.values() if p.leader < 0)
    if leaderless:
        return f"topic {settings.source_topic}: partitions without a leader: {leaderless}"
    return None


def main() -> int:
    reason = problem(Settings.from_env())
    if reason:
        print(f"unhealthy: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
