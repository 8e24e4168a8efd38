"""`kdp stream --metrics-port` on the real stack: what its endpoint says equals what the run itself reports."""

from __future__ import annotations

import pytest
from kafka_io import create_topics, read_all
from metrics_run import StreamProcess, series, total
from registry_io import register_output_schema
from scenario_settings import scenario_settings

from streaming.generator.events import EventFactory, IrregularityRates
from streaming.generator.producer import generate

pytestmark = pytest.mark.integration

EVENTS = 20_000
PARTITIONS = 3


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
def test_scraped_counters_equal_the_runs_own_summary(stack, delivery):
    settings = scenario_settings(stack.bootstrap, stack.registry_url, delivery, "metrics", batch_size=2000)
    create_topics(settings.bootstrap, [settings.source_topic, settings.output_topic, settings.dlq_topic], PARTITIONS)
    register_output_schema(settings)
    factory = EventFactory(11, IrregularityRates.with_malformed(0.08), users=500)
    stream = StreamProcess.start(settings)
    try:
        stream.scrape_until(lambda s: ("kdp_messages_consumed_total", ()) in s, "the metrics endpoint")
        # Events arrive while it runs, for longer than librdkafka's statistics interval (5 s): the producer's
        # statistics are served while it sends.
        summary = generate(
            {"bootstrap.servers": settings.bootstrap}, settings.source_topic, factory, count=EVENTS, rate=2500
        )
        assert summary.ok
        # Everything converted, and librdkafka's statistics (every 5 s) have reported each partition caught up
        # and both clients' round trips.
        samples = stream.scrape_until(
            lambda s: (
                total(s, "kdp_messages_consumed_total") == EVENTS
                and len(series(s, "kdp_consumer_lag_messages")) == PARTITIONS
                and total(s, "kdp_consumer_lag_messages") == 0
                and {dict(labels)["client"] for labels in series(s, "kdp_kafka_broker_rtt_seconds")}
                == {"consumer", "producer"}
            ),
            "all events converted, lag 0 on every partition, both clients' statistics",
        )
    finally:
        consumed, processed, dead = stream.stop()

    print(f"[metrics] {delivery}: summary consumed {consumed}, processed {processed}, dead letters {dead}")
    assert consumed == EVENTS
    assert total(samples, "kdp_messages_consumed_total") == consumed
    assert total(samples, "kdp_records_processed_total") == processed
    assert total(samples, "kdp_dead_letters_total") == dead > 0
    # And the topics agree with both.
    assert len(read_all(settings.bootstrap, settings.output_topic)) == processed
    assert len(read_all(settings.bootstrap, settings.dlq_topic)) == dead

    batches = total(samples, "kdp_batches_total")
    assert batches >= EVENTS / settings.batch_size
    assert total(samples, "kdp_batch_duration_seconds_count") == batches
    assert total(samples, "kdp_end_to_end_latency_seconds_count") == batches
    assert total(samples, "kdp_batches_redone_total") == 0
    assert total(samples, "kdp_bytes_consumed_total") > 0
    transactions = series(samples, "kdp_transactions_total")
    committed = transactions[(("outcome", "committed"),)]
    if delivery == "exactly-once":  # a transaction holds one or more batches (KDP_COMMIT_INTERVAL_MS)
        assert 0 < committed <= batches
    else:
        assert committed == 0
    assert transactions[(("outcome", "aborted"),)] == 0
    lags = series(samples, "kdp_consumer_lag_messages")
    assert {dict(labels)["topic"] for labels in lags} == {settings.source_topic}
    assert {dict(labels)["partition"] for labels in lags} == {str(p) for p in range(PARTITIONS)}
    assert all(value > 0 for value in series(samples, "kdp_kafka_broker_rtt_seconds").values())
    assert ("kdp_kafka_producer_queue_messages", ()) in samples
    info = series(samples, "kdp_converter_info")
    assert [dict(labels)["delivery"] for labels in info] == [delivery]
