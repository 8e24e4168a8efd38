"""Where a record is counted: exactly once over all hours, in its event hour or as late in its arrival hour,
and always inside the part of the log the counting hour reads."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestration.insights.placement import HOUR_MS, LOG_ORDER_MARGIN_MS, MINUTE_MS, Outcome, Window
from streaming.conversion.transform import MAX_FUTURE_MS, MIN_EVENT_TIME_MS

H = 1_795_593_600_000  # 2026-11-25 08:00 UTC
SLACK = 10 * MINUTE_MS
YEAR_2001 = 978_307_200_000


def hour(start_ms: int, slack_ms: int = SLACK) -> Window:
    return Window(start_ms, start_ms + HOUR_MS, slack_ms)


times = st.integers(MIN_EVENT_TIME_MS, 4_102_444_800_000)  # 2000 to 2100


@st.composite
def event_and_processing(draw: st.DrawFn) -> tuple[int, int]:
    """An event time and a processing time the transform accepts: the event at most MAX_FUTURE_MS ahead."""
    processed = draw(times)
    kind = draw(st.sampled_from(["near", "any"]))
    if kind == "near":  # around an hour boundary, where the rules meet
        event = processed + draw(st.integers(-3 * HOUR_MS, MAX_FUTURE_MS))
    else:
        event = draw(st.integers(MIN_EVENT_TIME_MS, processed + MAX_FUTURE_MS))
    return event, processed


@settings(max_examples=2000, deadline=None)
@given(event_and_processing(), st.integers(0, 59).map(lambda m: m * MINUTE_MS))
def test_every_record_is_counted_exactly_once_and_where_that_hour_reads(times_: tuple[int, int], slack_ms: int) -> None:
    event, processed = times_
    candidates = {event - event % HOUR_MS, processed - processed % HOUR_MS}
    # Every hour that could read the record: from the event's hour - 1 to the processing hour + 2.
    first, last = min(candidates) - HOUR_MS, max(candidates) + 2 * HOUR_MS
    if last - first > 30 * HOUR_MS:  # far apart: the hours around each are the ones that could read it
        starts = [s + d * HOUR_MS for s in candidates for d in (-1, 0, 1, 2)]
    else:
        starts = list(range(first, last + 1, HOUR_MS))
    counting = {}
    for start in starts:
        window = hour(start, slack_ms)
        outcome = window.place_record(event, processed)
        if outcome in (Outcome.COUNTED, Outcome.LATE):
            counting[start] = outcome
            # Inside what that hour reads: stamped at or after its first offset's time, before its stop.
            assert window.records_from_ms <= processed < window.records_stop_ms - LOG_ORDER_MARGIN_MS
    assert len(counting) == 1, counting
    [(start, outcome)] = counting.items()
    if outcome is Outcome.COUNTED:
        assert start <= event < start + HOUR_MS
    else:
        assert start <= processed < start + HOUR_MS and processed >= event - event % HOUR_MS + HOUR_MS + slack_ms


@pytest.mark.parametrize(
    ("event", "processed", "expected"),
    [
        (H + 1, H + 2, Outcome.COUNTED),
        (H + 30 * MINUTE_MS, H - MAX_FUTURE_MS, Outcome.COUNTED),  # a clock ahead: processed before the hour
        (H + HOUR_MS - 1, H + HOUR_MS + SLACK - 1, Outcome.COUNTED),  # the last moment of the slack
        (H - 1, H + 1, Outcome.OUTSIDE),  # the previous hour's, processed in its slack
        (H - 1, H + SLACK, Outcome.LATE),  # the previous hour's, processed after its slack: late here
        (YEAR_2001, H + 5 * MINUTE_MS, Outcome.LATE),  # very old: late in the hour it arrived in
        (H + HOUR_MS - 1, H + HOUR_MS + SLACK, Outcome.OUTSIDE),  # this hour's, too late: the next hour's late
        (H + HOUR_MS, H + 2, Outcome.OUTSIDE),  # the next hour's, from a clock ahead
        (H + 1, H + HOUR_MS + SLACK + LOG_ORDER_MARGIN_MS, Outcome.BEYOND),  # ends the read
    ],
)
def test_placement_at_the_edges(event: int, processed: int, expected: Outcome) -> None:
    assert hour(H).place_record(event, processed) is expected


def test_dead_letters_count_by_failure_hour_and_end_the_read_after_the_margin() -> None:
    window = hour(H)
    assert window.place_dead_letter(H) is Outcome.COUNTED
    assert window.place_dead_letter(H + HOUR_MS - 1) is Outcome.COUNTED
    assert window.place_dead_letter(H - 1) is Outcome.OUTSIDE
    assert window.place_dead_letter(H + HOUR_MS) is Outcome.OUTSIDE
    assert window.place_dead_letter(H + HOUR_MS + LOG_ORDER_MARGIN_MS) is Outcome.BEYOND


def test_the_read_bounds_follow_the_transform_and_the_slack() -> None:
    window = hour(H)
    assert window.records_from_ms == H - MAX_FUTURE_MS
    assert window.records_stop_ms == H + HOUR_MS + SLACK + LOG_ORDER_MARGIN_MS
    assert window.dead_letters_stop_ms == H + HOUR_MS + LOG_ORDER_MARGIN_MS


@pytest.mark.parametrize(("start", "end", "slack"), [(H + 1, H + 1 + HOUR_MS, 0), (H, H, 0), (H, H + HOUR_MS, -1)])
def test_a_window_must_be_aligned_and_the_slack_not_negative(start: int, end: int, slack: int) -> None:
    with pytest.raises(ValueError):
        Window(start, end, slack)
