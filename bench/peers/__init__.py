"""Peers: the converter's job written idiomatically in other Python streaming libraries, measured beside ours.

Each peer is a subject like the baselines (`bench.subject`: same backlog, its own group and topics, timed
from its first message to its last commit, one `BENCH-RESULT` line), written the way the library's own
documentation shows, at-least-once:
- `quix_streams`: Quix Streams 3.x, an `Application` and a `StreamingDataFrame`, two branches (records to
  the output topic through Quix's schema-registry `AvroSerializer`, rejections to the dead-letter topic);
- `sentry_arroyo`: Sentry's Arroyo 2.x, a strategy chain `RunTask(validate) -> RunTask(encode) -> Produce ->
  CommitOffsets`, invalid messages raised as `InvalidMessage` and sent by the processor's `DlqPolicy`.

Both validate with the project's pure `streaming.conversion.transform.transform`: it is a plain function from bytes to
a record or a rejection, and plugging a plain function into `StreamingDataFrame.apply` or `RunTask` is what
each library's docs show. So the validation rules are the same; what differs is the framework around them,
the encoder (each library's usual one) and the producer defaults. `NOTES` says, per peer, where the job
differs from ours; `bench.report` prints it under the results.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.peers.environments import PEERS_DIR, PeerEnvironment


@dataclass(frozen=True)
class Peer:
    key: str
    """The key of its results under `results["throughput"]`."""
    label: str
    module: str
    environment: PeerEnvironment
    packages: tuple[str, ...]
    """Whose installed versions the results record."""
    differences: tuple[str, ...]
    """Where the job, as the library does it, differs from ours."""


QUIX = Peer(
    key="quixstreams",
    label="(e) Quix Streams",
    module="bench.peers.quix_streams",
    environment=PeerEnvironment("quixstreams", PEERS_DIR / "quixstreams-requirements.txt"),
    packages=("quixstreams", "confluent-kafka", "fastavro"),
    differences=(
        "one message per `poll()` and per call of each step (Quix processes message by message)",
        "the value is cloned (pickled) for the second branch, as Quix does at every branch point",
        "Avro by Quix's `AvroSerializer` with a schema-registry config, which hands each record to confluent-kafka's "
        "`AvroSerializer` (the stock encoder of row (b))",
        "processing time read once per message (ours: once per batch)",
        "outputs and dead letters keep the source message's timestamp, Quix's default (ours: the processing time)",
        "checkpoint (flush, then commit) every 5 s, Quix's default `commit_interval`; producer at Quix's defaults "
        "(ours: acks=all, idempotent, lz4)",
        "no running insights (ours counts devices and locales per batch)",
    ),
)

ARROYO = Peer(
    key="arroyo",
    label="(f) Arroyo",
    module="bench.peers.sentry_arroyo",
    environment=PeerEnvironment("arroyo"),
    packages=("sentry-arroyo", "confluent-kafka", "fastavro"),
    differences=(
        "one message per `poll()`, and per `submit()` of each strategy (Arroyo processes message by message)",
        "Avro by confluent-kafka's `AvroSerializer` (the stock encoder of row (b)); Arroyo has no Avro codec",
        "outputs and dead letters are stamped at produce time (Arroyo's producer takes no timestamp; ours: the "
        "batch's clock reading)",
        "dead letters carry Arroyo's `original_partition`/`original_offset` headers, and our `kdp.dlq.*` headers "
        "through a small `KafkaDlqProducer` subclass (Arroyo passes the reason but does not write it)",
        "processing time read once per message (ours: once per batch)",
        "offsets committed at most once a second (`ONCE_PER_SECOND`, the docs' policy), after delivery and after "
        "the dead letters are flushed; producer at librdkafka's defaults (ours: acks=all, idempotent, lz4)",
        "no running insights (ours counts devices and locales per batch)",
    ),
)

PEERS: tuple[Peer, ...] = (QUIX, ARROYO)
