"""BatchedForward: concurrent callers share passes and each gets exactly its own rows back."""
import threading
import time

import pytest
import torch

from classifier.inference import BatchedForward, frozen


class SlowForward:
    """Doubles its input, slowly, and records the size of every pass."""

    def __init__(self, fail_on: float | None = None):
        self.sizes: list[int] = []
        self.fail_on = fail_on

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
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
    out = BatchedForward(forward)(torch.tensor([[1.0], [2.0]]))
    assert out.tolist() == [[2.0], [4.0]]
    assert forward.sizes == [2]


def test_concurrent_calls_share_passes_and_get_their_own_rows():
    forward = SlowForward()
    batched = BatchedForward(forward, max_rows=16)
    inputs = [torch.full((1 + i % 2, 3), float(i)) for i in range(8)]
    results = call_concurrently(batched, inputs)
    for i, out in enumerate(results):
        assert torch.equal(out, inputs[i] * 2)
    # the first caller runs alone; everyone arriving meanwhile shares the next pass
    assert sum(forward.sizes) == sum(len(x) for x in inputs)
    assert len(forward.sizes) < len(inputs)
    assert batched.passes == len(forward.sizes)


def test_a_pass_takes_at_most_max_rows():
    forward = SlowForward()
    batched = BatchedForward(forward, max_rows=3)
    inputs = [torch.full((2, 1), float(i)) for i in range(6)] + [torch.full((5, 1), 9.0)]
    results = call_concurrently(batched, inputs)
    assert all(torch.equal(out, x * 2) for out, x in zip(results, inputs))
    # a caller with more rows than max_rows still runs, alone
    assert all(size <= 3 for size in forward.sizes if size != 5)
    assert forward.sizes.count(5) == 1


def test_an_error_reaches_the_callers_of_its_pass_and_the_next_pass_runs():
    forward = SlowForward(fail_on=-1.0)
    batched = BatchedForward(forward)
    results = call_concurrently(batched, [torch.full((1, 1), -1.0)] + [torch.full((1, 1), float(i)) for i in range(3)])
    assert isinstance(results[0], RuntimeError)
    # callers who shared the failing pass get its error, the others their own answer; none a made-up one
    assert all(isinstance(r, RuntimeError) or r.item() == 2 * i for i, r in enumerate(results[1:]))
    assert batched(torch.ones(1, 1)).item() == 2.0


@pytest.mark.parametrize("max_rows", [1, 8])
def test_outputs_match_the_unbatched_model(max_rows):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).eval()
    inputs = [torch.randn(1, 4) for _ in range(6)]
    results = call_concurrently(BatchedForward(net, max_rows=max_rows), inputs)
    with torch.inference_mode():
        for out, x in zip(results, inputs):
            torch.testing.assert_close(out, net(x))


def test_a_frozen_graph_gives_the_modules_outputs_at_any_batch_size(recwarn):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()
    with torch.no_grad():  # BatchNorm statistics other than the defaults, so folding them matters
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
    graph = frozen(net, torch.zeros(1, 3, 16, 16))
    assert not [w for w in recwarn if issubclass(w.category, FutureWarning)]
    with torch.inference_mode():
        for batch in (1, 3, 8):
            x = torch.randn(batch, 3, 16, 16)
            torch.testing.assert_close(graph(x), net(x), rtol=1e-4, atol=1e-5)


def test_the_frozen_predictor_answers_as_the_eager_one(trained_model_dir, backbone_weights, session_predictor,
                                                        demo_train_dir):
    """What serving runs gives the answers training's eager modules would: the same type and
    band for every demo image, the score to float rounding (issue 9 asked >= 99.5% of top-1)."""
    from classifier.predictor import Predictor

    eager = Predictor(trained_model_dir, weights=backbone_weights, freeze=False)
    images = sorted(demo_train_dir.glob("*/*.jpg"))
    for path in images:
        a, b = eager.predict(path), session_predictor.predict(path)
        assert (a.document_type, a.band, a.localisation.found) == (b.document_type, b.band, b.localisation.found)
        assert abs(a.score - b.score) < 1e-3
