from streaming.running_insights import MAX_DISTINCT, RunningInsights


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
