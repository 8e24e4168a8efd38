"""The deadline around transactional calls (`streaming.delivery.exactly_once`): a call that ignores its timeout is
declared stuck instead of blocking the converter for ever; any other outcome passes through unchanged."""

from __future__ import annotations

import threading

import pytest

from streaming.delivery import exactly_once
from streaming.delivery.exactly_once import ProducerStuck, _call_within_deadline


def test_a_call_that_returns_passes_its_timeout_through():
    seen = []
    _call_within_deadline(seen.append, "init_transactions")
    assert seen == [exactly_once.CALL_TIMEOUT_SECONDS]


def test_a_call_that_raises_raises_in_the_callers_thread():
    def refuse(_timeout: float) -> None:
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        _call_within_deadline(refuse, "commit_transaction")


def test_a_call_that_ignores_its_timeout_is_declared_stuck(monkeypatch):
    monkeypatch.setattr(exactly_once, "STUCK_AFTER_SECONDS", 0.2)
    release = threading.Event()
    try:
        with pytest.raises(ProducerStuck, match="send_offsets_to_transaction did not return within"):
            _call_within_deadline(lambda _timeout: release.wait(), "send_offsets_to_transaction")
    finally:
        release.set()


def test_a_retriable_error_is_tried_again_and_each_wait_names_the_call(caplog, monkeypatch):
    monkeypatch.setattr(exactly_once.time, "sleep", lambda _seconds: None)  # tenacity's wait, not the test's
    from confluent_kafka import KafkaError, KafkaException

    tries: list[float] = []

    class SlowToStart:
        def __init__(self, _config: dict) -> None: ...

        def init_transactions(self, timeout: float) -> None:
            tries.append(timeout)
            if len(tries) < 3:
                raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "coordinator loading", retriable=True))

    exactly_once.ExactlyOnce({}, "kdp-converter-a", new_producer=SlowToStart)

    assert len(tries) == 3
    waits = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert [w.split(": ")[0] for w in waits] == ["init_transactions", "init_transactions"]
    assert waits[0].endswith("retrying in 0.5s") and waits[1].endswith("retrying in 1.0s")
