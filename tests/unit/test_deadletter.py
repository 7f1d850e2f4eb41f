from pulseline.deadletter import DeadLetterInfo, reason_label


def test_headers_carry_why_and_where_and_round_trip() -> None:
    info = DeadLetterInfo("invalid row: not JSON", "sink", "ingest.error", 3, 99)
    headers = dict(info.headers())
    assert headers["stage"] == b"sink" and headers["source.offset"] == b"99"
    assert DeadLetterInfo.from_headers(info.headers()) == info


def test_metric_labels_keep_only_the_reason_class() -> None:
    assert reason_label("invalid row: event_id is missing") == "invalid row"
