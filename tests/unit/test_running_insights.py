from streaming.observe.running_insights import MAX_DISTINCT, RunningInsights


def test_merge_adds_batches_and_summary_names_the_top_device():
    total = RunningInsights()
    batch = RunningInsights()
    for device in ["ios", "ios", "android"]:
        batch.add_record(device, "CA")
    batch.add_rejection("invalid_json")
    total.merge(batch)
    total.merge(batch)
    assert total.processed == 6 and total.dead_lettered == 2
    assert total.device_types == {"ios": 4, "android": 2}
    assert "most popular device_type: ios" in total.summary()
    assert "25.0%" in total.summary()


def test_tallies_are_bounded():
    insights = RunningInsights()
    for i in range(MAX_DISTINCT + 50):
        insights.add_record(f"device-{i}", "CA")
    assert len(insights.device_types) == MAX_DISTINCT + 1
    assert insights.device_types["(other)"] == 50


def test_a_batch_counted_at_once_counts_as_one_by_one_within_the_bound():
    device_types = [f"device-{i % (MAX_DISTINCT + 30)}" for i in range(3 * MAX_DISTINCT)] + ["ios"] * 5
    locales = ["CA", "NY", "CA"] * MAX_DISTINCT + ["PR"] * 5
    at_once, one_by_one = RunningInsights(), RunningInsights()
    at_once.add_records(device_types[:100], locales[:100])
    at_once.add_records(device_types[100:], locales[100:])
    for device_type, locale in zip(device_types, locales, strict=True):
        one_by_one.add_record(device_type, locale)
    assert at_once.processed == one_by_one.processed == len(device_types)
    assert at_once.locales == one_by_one.locales == {"CA": 2 * MAX_DISTINCT, "NY": MAX_DISTINCT, "PR": 5}
    assert len(at_once.device_types) == MAX_DISTINCT + 1 and sum(at_once.device_types.values()) == len(device_types)
