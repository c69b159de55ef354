"""BatchedForward: concurrent callers share passes and each gets exactly its own rows back."""
import threading
import time

import numpy as np
import pytest

from classifier.inference import BatchedForward


class SlowForward:
    """Doubles its input, slowly, and records the size of every pass."""

    def __init__(self, fail_on: float | None = None):
        self.sizes: list[int] = []
        self.fail_on = fail_on

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.sizes.append(len(x))
        time.sleep(0.05)
        if self.fail_on is not None and bool((x == self.fail_on).any()):
            raise RuntimeError("bad rows")
        return x * 2


def call_concurrently(batched, inputs):
    """Each input from its own thread, started together; the outputs (or errors) in input order."""
    results = [None] * len(inputs)
    start = threading.Barrier(len(inputs))

    def run(i):
        start.wait()
        try:
            results[i] = batched(inputs[i])
        except RuntimeError as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results


def test_a_lone_call_runs_alone_at_once():
    forward = SlowForward()
    out = BatchedForward(forward)(np.array([[1.0], [2.0]]))
    assert out.tolist() == [[2.0], [4.0]]
    assert forward.sizes == [2]


def test_concurrent_calls_share_passes_and_get_their_own_rows():
    forward = SlowForward()
    batched = BatchedForward(forward, max_rows=16)
    inputs = [np.full((1 + i % 2, 3), float(i)) for i in range(8)]
    results = call_concurrently(batched, inputs)
    for i, out in enumerate(results):
        assert np.array_equal(out, inputs[i] * 2)
    # the first caller runs alone; everyone arriving meanwhile shares the next pass
    assert sum(forward.sizes) == sum(len(x) for x in inputs)
    assert len(forward.sizes) < len(inputs)
    assert batched.passes == len(forward.sizes)


def test_a_pass_takes_at_most_max_rows():
    forward = SlowForward()
    batched = BatchedForward(forward, max_rows=3)
    inputs = [np.full((2, 1), float(i)) for i in range(6)] + [np.full((5, 1), 9.0)]
    results = call_concurrently(batched, inputs)
    assert all(np.array_equal(out, x * 2) for out, x in zip(results, inputs))
    # a caller with more rows than max_rows still runs, alone
    assert all(size <= 3 for size in forward.sizes if size != 5)
    assert forward.sizes.count(5) == 1


def test_an_error_reaches_the_callers_of_its_pass_and_the_next_pass_runs():
    forward = SlowForward(fail_on=-1.0)
    batched = BatchedForward(forward)
    results = call_concurrently(batched, [np.full((1, 1), -1.0)] + [np.full((1, 1), float(i)) for i in range(3)])
    assert isinstance(results[0], RuntimeError)
    # callers who shared the failing pass get its error, the others their own answer; none a made-up one
    assert all(isinstance(r, RuntimeError) or r.item() == 2 * i for i, r in enumerate(results[1:]))
    assert batched(np.ones((1, 1))).item() == 2.0


@pytest.mark.parametrize("max_rows", [1, 8])
def test_outputs_match_the_unbatched_function(max_rows):
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(4, 3)).astype(np.float32)

    def layer(x):
        return np.tanh(x @ weights)

    inputs = [rng.normal(size=(1, 4)).astype(np.float32) for _ in range(6)]
    results = call_concurrently(BatchedForward(layer, max_rows=max_rows), inputs)
    for out, x in zip(results, inputs):
        np.testing.assert_allclose(out, layer(x), rtol=1e-6)
