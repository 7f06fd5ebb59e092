"""pygrad._config: no_grad, test_mode and using_config belong to the thread that sets them."""

import sys
import threading

import numpy as np
import pytest

import pygrad
from pygrad import Config, Variable, nn, no_grad, using_config
from pygrad import functions as F

TIMEOUT = 60  # seconds a test waits for a thread before failing instead of hanging


@pytest.fixture
def frequent_switches():
    """Let the interpreter switch threads every microsecond, so that they interleave finely."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def run_threads(*targets):
    """Run each target in a thread of its own; re-raise the first error one of them raised."""
    errors = []

    def guarded(target):
        def run():
            try:
                target()
            except BaseException as error:  # noqa: BLE001 -- handed to the test below
                errors.append(error)

        return run

    threads = [threading.Thread(target=guarded(target)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "a thread did not finish"
    if errors:
        raise errors[0]


def test_interleaved_no_grad_blocks_leave_recording_on():
    # Thread 1 enters no_grad and waits; thread 2 enters and leaves; thread 1 leaves.
    entered, left = threading.Event(), threading.Event()

    def first():
        with no_grad():
            entered.set()
            assert left.wait(TIMEOUT)
            assert Config.enable_backprop is False

    def second():
        assert entered.wait(TIMEOUT)
        with no_grad():
            assert Config.enable_backprop is False
        left.set()

    run_threads(first, second)
    assert Config.enable_backprop is True
    x = Variable(np.array([1.0, 2.0, 3.0]))
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 4.0, 6.0])


def test_no_grad_and_test_mode_in_one_thread_leave_another_recording_and_training():
    inside, done = threading.Event(), threading.Event()
    seen = {}

    def paused():
        with no_grad(), pygrad.test_mode():
            inside.set()
            assert done.wait(TIMEOUT)
            seen["paused"] = (Config.enable_backprop, Config.train)

    def working():
        assert inside.wait(TIMEOUT)
        try:
            x = Variable(np.array([1.0, -2.0]))
            y = F.dropout(F.tanh(x), 0.5)
            seen["working"] = (Config.enable_backprop, Config.train, y.creator is not None)
            y.sum().backward()
            seen["grad"] = x.grad is not None
        finally:
            done.set()

    run_threads(paused, working)
    assert seen == {"paused": (False, False), "working": (True, True, True), "grad": True}


def test_a_new_thread_starts_with_the_defaults():
    seen = []

    def read():
        seen.append((Config.enable_backprop, Config.train))
        Config.enable_backprop = False  # the 0.1.0 spelling, for this thread only

    with no_grad(), using_config("train", False):
        run_threads(read)
        assert (Config.enable_backprop, Config.train) == (False, False)
    run_threads(read)
    assert seen == [(True, True), (True, True)]
    assert (Config.enable_backprop, Config.train) == (True, True)


def test_config_attributes_can_be_assigned_directly_as_in_pygrad_0_1_0():
    try:
        Config.enable_backprop = False
        assert (Variable(2.0) * 3).creator is None
    finally:
        Config.enable_backprop = True
    assert (Variable(2.0) * 3).creator is not None
    assert pygrad.Config is Config
    assert "enable_backprop=True" in repr(Config)


def test_backward_with_create_graph_leaves_the_setting_of_other_threads_alone(
    frequent_switches,
):
    # backward() switches recording for its own walk; another thread under no_grad must
    # neither see that nor switch this thread's recording off.
    stop = threading.Event()
    observed = []

    def watcher():
        with no_grad():
            while not stop.is_set():
                observed.append(Config.enable_backprop)

    def trainer():
        try:
            for _ in range(200):
                x = Variable(np.array([0.5, 1.5]))
                y = (x * x * x).sum()
                y.backward(create_graph=True)
                gx = x.grad
                x.clear_grad()
                gx.sum().backward()
                np.testing.assert_allclose(x.grad.data, [3.0, 9.0])
        finally:
            stop.set()

    run_threads(watcher, trainer)
    assert observed and not any(observed)


# =============================================================================================
# threads training models of their own give the sequential results
# =============================================================================================
class FixedMaskDropout(nn.Module):
    """Dropout with a mask fixed per model, following the train switches as nn.Dropout does.

    nn.Dropout draws from a random stream that threads share, so its masks depend on the order
    in which threads draw; a fixed mask makes the runs comparable bit for bit.
    """

    def __init__(self, mask: np.ndarray):
        super().__init__()
        self.mask = mask

    def forward(self, x):
        if not (self.training and Config.train):
            return x
        with using_config("train", True):
            return x * Variable(self.mask, device=x.device)


class SmallNet(nn.Module):
    def __init__(self, seed: int):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.fc1 = nn.Linear(8, 16)
        self.bn = nn.BatchNorm1d(16)
        self.drop = FixedMaskDropout((rng.random((12, 16)) > 0.3).astype(np.float32) / 0.7)
        self.out_drop = nn.Dropout(0.5)  # active in no step: evaluation runs under test_mode
        self.fc2 = nn.Linear(16, 3)
        for param in self.params():
            param.data = rng.standard_normal(param.shape).astype(np.float32) * 0.3

    def forward(self, x):
        h = self.drop(F.relu(self.bn(self.fc1(x))))
        if not Config.train:
            h = self.out_drop(h)  # the identity here, since Config.train is off
        return self.fc2(h)


def train_small_net(seed: int, device: str, steps: int = 6) -> dict:
    """A few SGD steps of SmallNet, each followed by an evaluation; every result on the host."""
    rng = np.random.default_rng(100 + seed)
    x = rng.standard_normal((12, 8)).astype(np.float32)
    t = rng.integers(0, 3, 12)
    model = SmallNet(seed).to(device)
    optimizer = nn.optim.SGD(model.params(), lr=0.1)
    inputs = Variable(x, device=device)
    labels = Variable(t, device=device)
    losses, evaluations = [], []
    for _ in range(steps):
        loss = F.softmax_cross_entropy(model(inputs), labels)
        model.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.numpy())
        with no_grad(), pygrad.test_mode():
            evaluations.append(model(inputs).numpy())
    results = {f"{k}.{n}": v for k, d in model.weight_dict().items() for n, v in d.items()}
    results["losses"] = np.array(losses)
    results["evaluations"] = np.array(evaluations)
    return results


@pytest.mark.parametrize("on", ["cpu", "opencl"])
def test_threads_training_their_own_models_get_the_sequential_results(
    on, request, frequent_switches
):
    device = request.getfixturevalue("opencl") if on == "opencl" else "cpu"
    seeds = range(4)
    sequential = [train_small_net(seed, device) for seed in seeds]
    threaded = [None] * len(seeds)

    def worker(index):
        def run():
            threaded[index] = train_small_net(seeds[index], device)

        return run

    for _ in range(3):
        run_threads(*(worker(index) for index in range(len(seeds))))
        for expected, got in zip(sequential, threaded):
            assert expected.keys() == got.keys()
            for name in expected:
                np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    # The runs differ from each other, so equality above is not a coincidence.
    assert not np.array_equal(sequential[0]["losses"], sequential[1]["losses"])
