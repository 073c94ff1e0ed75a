"""The batcher across runs: concurrent requests share one call, each gets its own results."""

from __future__ import annotations

import threading

import pytest

from workers.batching import MicroBatcher


class Recorder:
    """A process function that records each call's inputs; calls wait until released."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def __call__(self, key, items):
        self.started.set()
        self.release.wait(10)
        self.calls.append(list(items))
        return [f"{key}:{item}" for item in items]


def submit_together(batcher: MicroBatcher, requests: list[tuple[str, list[str]]]):
    futures = [batcher.submit(key, items) for key, items in requests]
    return [future.result(timeout=10) for future in futures]


def test_concurrent_requests_share_one_call_and_get_their_own_results():
    process = Recorder()
    # a long wait: the batch closes because it is full, not because time passed
    batcher = MicroBatcher(process, max_items=4, max_wait_seconds=30)

    results = submit_together(batcher, [("m", ["a"]), ("m", ["b", "c"]), ("m", ["d"])])

    assert process.calls == [["a", "b", "c", "d"]]
    assert [r for r, _ in results] == [["m:a"], ["m:b", "m:c"], ["m:d"]]
    infos = {info for _, info in results}
    assert len(infos) == 1 and next(iter(infos)).runs == 3 and next(iter(infos)).items == 4


def test_a_full_batch_leaves_the_rest_for_the_next_and_keys_never_mix():
    process = Recorder()
    batcher = MicroBatcher(process, max_items=2, max_wait_seconds=0.05)

    results = submit_together(batcher, [("m", ["a"]), ("m", ["b"]), ("m", ["c"]), ("n", ["x"])])

    assert sorted(process.calls) == [["a", "b"], ["c"], ["x"]]
    assert [r for r, _ in results] == [["m:a"], ["m:b"], ["m:c"], ["n:x"]]
    assert results[0][1].id == results[1][1].id != results[2][1].id


def test_a_lone_request_runs_after_the_wait_without_company():
    process = Recorder()
    batcher = MicroBatcher(process, max_items=64, max_wait_seconds=0.01)
    ((result, info),) = submit_together(batcher, [("m", ["only"])])
    assert result == ["m:only"] and info.runs == 1 and info.items == 1


def test_a_request_larger_than_a_batch_runs_whole():
    process = Recorder()
    batcher = MicroBatcher(process, max_items=2, max_wait_seconds=0.01)
    ((result, info),) = submit_together(batcher, [("m", ["a", "b", "c"])])
    assert result == ["m:a", "m:b", "m:c"] and info.items == 3


def test_requests_arriving_during_a_call_form_the_next_batch():
    process = Recorder()
    process.release.clear()
    batcher = MicroBatcher(process, max_items=8, max_wait_seconds=0.01)
    first = batcher.submit("m", ["a"])
    assert process.started.wait(10)  # "a" is being computed
    later = [batcher.submit("m", [item]) for item in "bcd"]
    process.release.set()
    assert first.result(timeout=10)[0] == ["m:a"]
    assert [f.result(timeout=10)[0] for f in later] == [["m:b"], ["m:c"], ["m:d"]]
    assert process.calls == [["a"], ["b", "c", "d"]]


def test_a_failed_call_fails_every_request_in_it_and_the_batcher_goes_on():
    calls = []

    def flaky(key, items):
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("out of memory")
        return items

    batcher = MicroBatcher(flaky, max_items=2, max_wait_seconds=30)
    futures = [batcher.submit("m", [i]) for i in (1, 2)]
    for future in futures:
        with pytest.raises(RuntimeError, match="out of memory"):
            future.result(timeout=10)
    assert submit_together(batcher, [("m", [3]), ("m", [4])])[0][0] == [3]


def test_a_cancelled_request_is_left_out():
    process = Recorder()
    batcher = MicroBatcher(process, max_items=3, max_wait_seconds=30)
    gone = batcher.submit("m", ["cancelled"])
    assert gone.cancel()
    results = submit_together(batcher, [("m", ["a"]), ("m", ["b"]), ("m", ["c"])])
    assert process.calls == [["a", "b", "c"]] and results[0][0] == ["m:a"]
