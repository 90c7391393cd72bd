"""Rule resources double with each retry, so `retries` can recover a job killed for memory."""

from synthvad.resources import grows, grows_with


def test_resources_double_per_attempt():
    mem = grows(4000)
    assert [mem(None, attempt) for attempt in (1, 2, 3)] == [4000, 8000, 16000]
    runtime = grows_with(lambda wildcards: wildcards["clips"] * 10)
    assert [runtime({"clips": 3}, attempt) for attempt in (1, 2)] == [30, 60]
