"""The converter's client settings: producer batches sized under the topics' message limit."""

from __future__ import annotations

from streaming.delivery.kafka_clients import MAX_BATCH_BYTES, producer_config
from streaming.settings import Settings

SETTINGS = Settings.from_env({}, bootstrap="localhost:9092", registry_url="http://localhost:8081")


def test_batches_stay_a_tenth_under_the_smallest_topic_limit():
    assert producer_config(SETTINGS, message_limit=300)["batch.size"] == 270


def test_batches_are_large_when_the_topics_allow_it_or_their_limit_is_unknown():
    assert producer_config(SETTINGS, message_limit=10 * MAX_BATCH_BYTES)["batch.size"] == MAX_BATCH_BYTES
    assert producer_config(SETTINGS)["batch.size"] == MAX_BATCH_BYTES
