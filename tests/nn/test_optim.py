"""Optimizers against textbook NumPy references and, where installed, torch.optim."""

import math
import tracemalloc

import numpy as np
import pytest

import pygrad
from pygrad import Parameter, Variable
from pygrad.nn import optim

STEPS = 5


def _grads(rng, shape, steps=STEPS):
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(steps)]


def _run(optimizer_cls, w0, grads, **kwargs):
    param = Parameter(w0.copy())
    optimizer = optimizer_cls([param], **kwargs)
    for g in grads:
        param.grad = Variable(g.copy())
        optimizer.step()
    return param.data


def _reference(name, w0, grads, **kw):
    """Textbook algorithms, written out plainly in float64."""
    w = w0.astype(np.float64).copy()
    state = {}
    for t, g in enumerate(grads, start=1):
        g = g.astype(np.float64)
        if name == "sgd":
            lr, mu, nesterov = kw["lr"], kw.get("momentum", 0.0), kw.get("nesterov", False)
            if mu:
                state["b"] = g.copy() if t == 1 else mu * state["b"] + g
                g = g + mu * state["b"] if nesterov else state["b"]
            w -= lr * g
        elif name == "adagrad":
            state["s"] = state.get("s", 0) + g * g
            w -= kw["lr"] * g / (np.sqrt(state["s"]) + kw["eps"])
        elif name == "adadelta":
            rho, eps = kw["rho"], kw["eps"]
            state["v"] = rho * state.get("v", 0) + (1 - rho) * g * g
            delta = np.sqrt(state.get("u", 0) + eps) / np.sqrt(state["v"] + eps) * g
            state["u"] = rho * state.get("u", 0) + (1 - rho) * delta * delta
            w -= kw["lr"] * delta
        elif name in ("adam", "adamw"):
            lr, b1, b2, eps = kw["lr"], kw["beta_1"], kw["beta_2"], kw["eps"]
            if name == "adamw":
                w *= 1 - lr * kw["weight_decay"]
            state["m"] = b1 * state.get("m", 0) + (1 - b1) * g
            state["v"] = b2 * state.get("v", 0) + (1 - b2) * g * g
            m_hat = state["m"] / (1 - b1**t)
            v_hat = state["v"] / (1 - b2**t)
            w -= lr * m_hat / (np.sqrt(v_hat) + eps)
        elif name == "rmsprop":
            a = kw["alpha"]
            state["v"] = a * state.get("v", 0) + (1 - a) * g * g
            w -= kw["lr"] * g / (np.sqrt(state["v"]) + kw["eps"])
    return w


CASES = [
    ("sgd", optim.SGD, {"lr": 0.1}),
    ("sgd", optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    ("sgd", optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("adagrad", optim.AdaGrad, {"lr": 0.05, "eps": 1e-10}),
    ("adadelta", optim.AdaDelta, {"lr": 1.0, "rho": 0.95, "eps": 1e-6}),
    ("adam", optim.Adam, {"lr": 0.01, "beta_1": 0.9, "beta_2": 0.999, "eps": 1e-8}),
    (
        "adamw",
        optim.AdamW,
        {"lr": 0.01, "beta_1": 0.9, "beta_2": 0.999, "eps": 1e-8, "weight_decay": 0.1},
    ),
    ("rmsprop", optim.RMSProp, {"lr": 0.01, "alpha": 0.99, "eps": 1e-8}),
]


@pytest.mark.parametrize(
    "name, cls, kwargs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_optimizer_steps_match_numpy_reference(name, cls, kwargs, rng):
    w0 = rng.standard_normal((3, 4)).astype(np.float32)
    grads = _grads(rng, w0.shape)
    result = _run(cls, w0, grads, **kwargs)
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, _reference(name, w0, grads, **kwargs), rtol=1e-5, atol=1e-6)


def _torch_optimizer(torch, name, params, kw):
    t = torch.optim
    if name == "sgd":
        return t.SGD(
            params, lr=kw["lr"], momentum=kw.get("momentum", 0), nesterov=kw.get("nesterov", False)
        )
    if name == "adagrad":
        return t.Adagrad(params, lr=kw["lr"], eps=kw["eps"])
    if name == "adadelta":
        return t.Adadelta(params, lr=kw["lr"], rho=kw["rho"], eps=kw["eps"])
    if name == "adam":
        return t.Adam(params, lr=kw["lr"], betas=(kw["beta_1"], kw["beta_2"]), eps=kw["eps"])
    if name == "adamw":
        return t.AdamW(
            params,
            lr=kw["lr"],
            betas=(kw["beta_1"], kw["beta_2"]),
            eps=kw["eps"],
            weight_decay=kw["weight_decay"],
        )
    return t.RMSprop(params, lr=kw["lr"], alpha=kw["alpha"], eps=kw["eps"])


@pytest.mark.parametrize(
    "name, cls, kwargs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_optimizer_steps_match_torch(name, cls, kwargs, rng, torch):
    w0 = rng.standard_normal((3, 4)).astype(np.float32)
    grads = _grads(rng, w0.shape)
    tw = torch.tensor(w0.copy(), requires_grad=True)
    topt = _torch_optimizer(torch, name, [tw], kwargs)
    for g in grads:
        tw.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(
        _run(cls, w0, grads, **kwargs), tw.detach().numpy(), rtol=1e-5, atol=1e-6
    )


def test_updates_are_in_place_and_skip_parameters_without_grad(rng):
    a, b = Parameter(np.ones(3, np.float32)), Parameter(np.ones(3, np.float32))
    data_a = a.data
    optimizer = optim.Adam([a, b], lr=0.1)
    a.grad = Variable(np.ones(3, np.float32))
    optimizer.step()
    assert a.data is data_a
    assert np.all(a.data < 1)
    np.testing.assert_array_equal(b.data, np.ones(3, np.float32))


@pytest.mark.parametrize("lr", [0.0, -0.1])
def test_non_positive_learning_rate_is_refused(lr):
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD([Parameter(np.ones(2))], lr=lr)


def test_state_dict_resumes_training_bit_for_bit(rng):
    w0, late0 = (rng.standard_normal((4,)).astype(np.float32) for _ in range(2))
    grads = _grads(rng, w0.shape, steps=6)

    def train(optimizer, w, late, steps):
        for step in steps:
            w.grad = Variable(grads[step].copy())
            # The late parameter has no grad on the first two steps, so its count lags.
            late.grad = None if step < 2 else Variable(-grads[step])
            optimizer.step()

    w, late = Parameter(w0.copy()), Parameter(late0.copy())
    train(optim.Adam([w, late], lr=0.01), w, late, range(6))

    first_w, first_late = Parameter(w0.copy()), Parameter(late0.copy())
    first = optim.Adam([first_w, first_late], lr=0.01)
    train(first, first_w, first_late, range(3))
    saved = first.state_dict()
    assert saved["state"]["0"]["step"] == 3 and saved["state"]["1"]["step"] == 1
    resumed_w, resumed_late = Parameter(first_w.data.copy()), Parameter(first_late.data.copy())
    resumed = optim.Adam([resumed_w, resumed_late], lr=0.5)
    resumed.load_state_dict(saved)
    assert resumed.lr == 0.01
    train(resumed, resumed_w, resumed_late, range(3, 6))
    np.testing.assert_array_equal(resumed_w.data, w.data)
    np.testing.assert_array_equal(resumed_late.data, late.data)


def test_adam_state_dict_without_per_parameter_steps_resumes_from_the_global_count(rng):
    param = Parameter(rng.standard_normal(4).astype(np.float32))
    optimizer = optim.Adam([param], lr=0.01)
    for g in _grads(rng, param.shape, steps=3):
        param.grad = Variable(g)
        optimizer.step()
    saved = optimizer.state_dict()
    del saved["state"]["0"]["step"]  # as written before parameters counted their own steps
    resumed = optim.Adam([Parameter(param.data.copy())], lr=0.01)
    resumed.load_state_dict(saved)
    assert resumed.state[0]["step"] == 3


def test_load_state_dict_rejects_wrong_shapes():
    param = Parameter(np.ones(3, np.float32))
    opt = optim.Adam([param])
    param.grad = Variable(np.ones(3, np.float32))
    opt.step()
    state = opt.state_dict()
    other = optim.Adam([Parameter(np.ones(4, np.float32))], lr=0.5)
    with pytest.raises(ValueError, match="shape"):
        other.load_state_dict(state)
    # A refused state dict changes nothing.
    assert other.lr == 0.5 and other.steps == 0 and other.state == [{}]


def test_weight_decay_hook_adds_rate_times_weight():
    param = Parameter(np.full(2, 2.0, np.float32))
    opt = optim.SGD([param], lr=1.0)
    opt.add_hook(optim.WeightDecay(0.1))
    param.grad = Variable(np.zeros(2, np.float32))
    opt.step()
    np.testing.assert_allclose(param.data, np.full(2, 1.8), rtol=1e-6)


def test_clip_grad_hook_limits_the_global_norm():
    a, b = Parameter(np.zeros(2, np.float32)), Parameter(np.zeros(2, np.float32))
    a.grad, b.grad = Variable(np.array([3.0, 0.0], np.float32)), Variable(
        np.array([0.0, 4.0], np.float32)
    )
    optim.ClipGrad(1.0)([a, b])
    norm = math.sqrt(float((a.grad.data**2).sum() + (b.grad.data**2).sum()))
    assert norm == pytest.approx(1.0, rel=1e-5)


def test_schedulers_follow_their_formulas():
    opt = optim.SGD([Parameter(np.ones(1))], lr=1.0)
    step = optim.StepLR(opt, step_size=2, gamma=0.5)
    seen = []
    for _ in range(4):
        step.step()
        seen.append(opt.lr)
    assert seen == [1.0, 0.5, 0.5, 0.25]
    opt = optim.SGD([Parameter(np.ones(1))], lr=1.0)
    cosine = optim.CosineAnnealingLR(opt, T_max=4, eta_min=0.0)
    for _ in range(2):
        cosine.step()
    assert opt.lr == pytest.approx(0.5)
    for _ in range(2):
        cosine.step()
    assert opt.lr == pytest.approx(0.0, abs=1e-12)


def test_schedulers_match_torch(torch):
    tp = torch.nn.Parameter(torch.ones(1))
    topt = torch.optim.SGD([tp], lr=0.3)
    tsched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=5, eta_min=0.01)
    opt = optim.SGD([Parameter(np.ones(1))], lr=0.3)
    sched = optim.CosineAnnealingLR(opt, T_max=5, eta_min=0.01)
    for _ in range(5):
        topt.step()
        tsched.step()
        sched.step()
        assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-9)


def test_hooks_treat_a_grad_shared_by_two_leaves_once():
    w1, w2 = Parameter(np.ones(2, np.float32)), Parameter(np.ones(2, np.float32))
    (w1 + w2).sum().backward()
    opt = optim.SGD([w1, w2], lr=1.0)
    opt.add_hook(optim.ClipGrad(1.0))
    opt.step()
    # Both grads are ones (global norm 2), clipped to norm 1: each element 0.5.
    np.testing.assert_allclose(w1.data, np.full(2, 0.5), rtol=1e-5)
    np.testing.assert_allclose(w2.data, np.full(2, 0.5), rtol=1e-5)


# --- per-parameter step counts -------------------------------------------------------------
def _adam_pair(torch, cls, name, kwargs, rng):
    """Six steps where ``b`` has no grad for the first three, in pygrad and in torch.optim."""
    a0, b0 = (rng.standard_normal(3).astype(np.float32) for _ in range(2))
    grads = [
        (rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32))
        for _ in range(6)
    ]
    a, b = Parameter(a0.copy()), Parameter(b0.copy())
    optimizer = cls([a, b], **kwargs)
    ta, tb = (torch.tensor(x.copy(), requires_grad=True) for x in (a0, b0))
    topt = _torch_optimizer(torch, name, [ta, tb], kwargs)
    for step, (ga, gb) in enumerate(grads):
        a.grad, ta.grad = Variable(ga.copy()), torch.tensor(ga)
        b.grad, tb.grad = (None, None) if step < 3 else (Variable(gb.copy()), torch.tensor(gb))
        optimizer.step()
        topt.step()
    return (a.data, b.data), (ta.detach().numpy(), tb.detach().numpy())


ADAM_CASES = [case for case in CASES if case[0] in ("adam", "adamw")]


@pytest.mark.parametrize("name, cls, kwargs", ADAM_CASES, ids=[c[0] for c in ADAM_CASES])
def test_adam_bias_correction_counts_steps_per_parameter(name, cls, kwargs, rng, torch):
    kwargs = {**kwargs, "lr": 0.1}
    ours, theirs = _adam_pair(torch, cls, name, kwargs, rng)
    for mine, reference in zip(ours, theirs):
        np.testing.assert_allclose(mine, reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, cls, kwargs", ADAM_CASES, ids=[c[0] for c in ADAM_CASES])
def test_adam_bias_correction_of_a_late_parameter_matches_numpy_reference(name, cls, kwargs, rng):
    kwargs = {**kwargs, "lr": 0.1}
    b0 = rng.standard_normal(3).astype(np.float32)
    grads = _grads(rng, b0.shape, steps=3)
    a, b = Parameter(np.ones(3, np.float32)), Parameter(b0.copy())
    optimizer = cls([a, b], **kwargs)
    for _ in range(3):
        a.grad = Variable(np.ones(3, np.float32))
        optimizer.step()
    for g in grads:
        a.grad, b.grad = Variable(np.ones(3, np.float32)), Variable(g.copy())
        optimizer.step()
    # b was updated three times, so it must look like three steps from the start.
    np.testing.assert_allclose(b.data, _reference(name, b0, grads, **kwargs), rtol=1e-5, atol=1e-6)


# --- restoring hyper-parameters ----------------------------------------------------------------
def test_load_state_dict_keeps_a_float_learning_rate_in_an_optimizer_made_with_an_int():
    saved = optim.SGD([Parameter(np.ones(2, np.float32))], lr=0.1, momentum=0.5).state_dict()
    param = Parameter(np.ones(2, np.float32))
    resumed = optim.SGD([param], lr=1, momentum=0)
    resumed.load_state_dict(saved)
    assert type(resumed.lr) is float and resumed.lr == 0.1
    assert resumed.momentum == 0.5
    param.grad = Variable(np.ones(2, np.float32))
    resumed.step()
    np.testing.assert_allclose(param.data, np.full(2, 0.9), rtol=1e-6)


def test_load_state_dict_round_trips_hyper_parameters_through_a_checkpoint(tmp_path):
    from pygrad.serialization import load_state, save_state

    source = optim.SGD([Parameter(np.ones(2, np.float32))], lr=0.1, momentum=0.9, nesterov=True)
    resumed = optim.SGD([Parameter(np.ones(2, np.float32))], lr=1)
    resumed.load_state_dict(load_state(save_state(tmp_path / "opt", source.state_dict())))
    assert (resumed.lr, resumed.momentum, resumed.nesterov) == (0.1, 0.9, True)
    assert type(resumed.lr) is float and type(resumed.nesterov) is bool


@pytest.mark.parametrize("lr", [-0.1, math.inf, math.nan])
def test_load_state_dict_refuses_a_negative_or_non_finite_learning_rate(lr):
    optimizer = optim.Adam([Parameter(np.ones(2, np.float32))], lr=0.01)
    saved = optimizer.state_dict()
    saved["hyper"]["lr"] = lr
    with pytest.raises(ValueError, match="learning rate"):
        optimizer.load_state_dict(saved)
    assert optimizer.lr == 0.01


# --- resuming schedulers -----------------------------------------------------------------------
SCHEDULERS = [
    (optim.StepLR, {"step_size": 2, "gamma": 0.5}),
    (optim.CosineAnnealingLR, {"T_max": 7, "eta_min": 0.01}),
]


@pytest.mark.parametrize(
    "scheduler_cls, kwargs", SCHEDULERS, ids=[c[0].__name__ for c in SCHEDULERS]
)
def test_scheduler_state_dict_resumes_the_learning_rates_of_an_uninterrupted_run(
    scheduler_cls, kwargs, tmp_path
):
    from pygrad.serialization import load_state, save_state

    optimizer = optim.SGD([Parameter(np.ones(1))], lr=0.3)
    scheduler = scheduler_cls(optimizer, **kwargs)
    straight = []
    for _ in range(6):
        scheduler.step()
        straight.append(optimizer.lr)

    optimizer = optim.SGD([Parameter(np.ones(1))], lr=0.3)
    scheduler = scheduler_cls(optimizer, **kwargs)
    for _ in range(3):
        scheduler.step()
    save_state(tmp_path / "optimizer", optimizer.state_dict())
    save_state(tmp_path / "scheduler", scheduler.state_dict())

    # Fresh ones built with another learning rate: only the loaded state may decide.
    optimizer = optim.SGD([Parameter(np.ones(1))], lr=0.05)
    scheduler = scheduler_cls(optimizer, **kwargs)
    optimizer.load_state_dict(load_state(tmp_path / "optimizer.npy"))
    scheduler.load_state_dict(load_state(tmp_path / "scheduler.npy"))
    assert scheduler.get_last_lr() == straight[2]
    resumed = []
    for _ in range(3):
        scheduler.step()
        resumed.append(optimizer.lr)
    assert resumed == straight[3:]


def test_scheduler_state_dict_matches_torch_after_resuming(torch):
    tp = torch.nn.Parameter(torch.ones(1))
    topt = torch.optim.SGD([tp], lr=0.3)
    tsched = torch.optim.lr_scheduler.StepLR(topt, step_size=2, gamma=0.5)
    opt = optim.SGD([Parameter(np.ones(1))], lr=0.3)
    sched = optim.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(3):
        topt.step()
        tsched.step()
        sched.step()
    assert sched.state_dict()["epoch"] == tsched.state_dict()["last_epoch"]
    assert sched.state_dict()["base_lr"] == tsched.state_dict()["base_lrs"][0]
    resumed_opt = optim.SGD([Parameter(np.ones(1))], lr=1.0)
    resumed_opt.load_state_dict(opt.state_dict())
    resumed = optim.StepLR(resumed_opt, step_size=2, gamma=0.5)
    resumed.load_state_dict(sched.state_dict())
    for _ in range(3):
        topt.step()
        tsched.step()
        resumed.step()
        assert resumed_opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12)


def test_scheduler_load_state_dict_refuses_unknown_or_missing_entries():
    scheduler = optim.StepLR(optim.SGD([Parameter(np.ones(1))], lr=0.3), step_size=2)
    saved = scheduler.state_dict()
    with pytest.raises(ValueError, match="unknown"):
        scheduler.load_state_dict({**saved, "T_max": 5})
    del saved["base_lr"]
    with pytest.raises(ValueError, match="missing"):
        scheduler.load_state_dict(saved)


# --- writing an optimizer ------------------------------------------------------------------
class _PlainDescent(optim.Optimizer):
    """A DeZero-style optimizer: the base class alone decides the learning rate."""

    def __init__(self, params):
        super().__init__(params)

    def update(self, param, grad, state):
        param.data -= self.lr * grad


def test_optimizer_subclass_calling_init_with_params_alone_gets_sgds_learning_rate():
    param = Parameter(np.ones(2, np.float32))
    optimizer = _PlainDescent([param])
    assert optimizer.lr == optim.SGD([param]).lr == 0.01
    param.grad = Variable(np.ones(2, np.float32))
    optimizer.step()
    np.testing.assert_allclose(param.data, np.full(2, 0.99), rtol=1e-6)


@pytest.mark.parametrize("lr", [0.0, -0.1])
def test_optimizer_base_class_refuses_a_non_positive_learning_rate(lr):
    with pytest.raises(ValueError, match="learning rate"):
        optim.Optimizer([Parameter(np.ones(2))], lr=lr)


# --- memory and devices --------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, cls, kwargs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_one_optimizer_step_allocates_only_the_scratch_arrays_it_needs(name, cls, kwargs, rng):
    # AdaDelta needs a denominator and the step at once; the others one array at a time.
    scratch_arrays = 2 if cls is optim.AdaDelta else 1
    shape = (512, 512)
    param = Parameter(rng.standard_normal(shape).astype(np.float32))
    optimizer = cls([param], **kwargs)
    param.grad = Variable(rng.standard_normal(shape).astype(np.float32))
    optimizer.step()  # the first step allocates the state, which is not scratch
    # tracemalloc sees NumPy's buffers; Python objects of a step add a few kilobytes only.
    tracemalloc.start()
    try:
        optimizer.step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (
        peak <= (scratch_arrays + 0.5) * param.data.nbytes
    ), f"{peak / param.data.nbytes:.2f} parameter sizes"


@pytest.mark.parametrize(
    "name, cls, kwargs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_optimizer_steps_on_a_device_match_the_cpu_in_place(name, cls, kwargs, device, rng):
    w0 = rng.standard_normal((3, 4)).astype(np.float32)
    grads = _grads(rng, w0.shape)
    param = Parameter(w0.copy(), device=device)
    data = param.data
    optimizer = cls([param], **kwargs)
    for g in grads:
        param.grad = Variable(g.copy(), device=device)
        optimizer.step()
    assert param.data is data and param.device == pygrad.backends.parse_device(device)
    np.testing.assert_allclose(param.numpy(), _run(cls, w0, grads, **kwargs), rtol=1e-5, atol=1e-6)


# --- a learning rate a scheduler brought to zero ------------------------------------------------
def test_cosine_annealing_to_zero_round_trips_through_the_optimizer_state_dict(tmp_path):
    from pygrad.serialization import load_state, save_state

    param = Parameter(np.ones(2, np.float32))
    optimizer = optim.Adam([param], lr=0.1)
    scheduler = optim.CosineAnnealingLR(optimizer, T_max=3, eta_min=0.0)
    for _ in range(3):
        param.grad = Variable(np.ones(2, np.float32))
        optimizer.step()
        scheduler.step()
    assert optimizer.lr == pytest.approx(0.0, abs=1e-12) and optimizer.lr >= 0
    saved = load_state(save_state(tmp_path / "optimizer", optimizer.state_dict()))
    resumed = optim.Adam([Parameter(param.data.copy())], lr=0.5)
    resumed.load_state_dict(saved)
    assert resumed.lr == optimizer.lr
    resumed.load_state_dict({**saved, "hyper": {**saved["hyper"], "lr": 0.0}})
    assert resumed.lr == 0.0
    # Building an optimizer with a learning rate of zero is still refused.
    with pytest.raises(ValueError, match="learning rate"):
        optim.Adam([Parameter(np.ones(2, np.float32))], lr=0.0)


def test_clip_grad_on_a_device_scales_like_the_cpu_without_reading_the_norm(device, monkeypatch):
    from pygrad import backends

    grads = [np.array([3.0, 0.0], np.float32), np.array([[0.0], [4.0]], np.float32)]
    for max_norm in (1.0, 10.0):
        params = [Parameter(np.zeros_like(g), device=device) for g in grads]
        for param, g in zip(params, grads):
            param.grad = Variable(g, device=device)
        if device != "cpu":
            # The hook must not wait for the device: no host copy of any of its arrays.
            def no_host_read(array):
                raise AssertionError("ClipGrad read a device array on the host")

            monkeypatch.setattr(type(params[0].data), "get", no_host_read)
        optim.ClipGrad(max_norm)(params)
        monkeypatch.undo()
        scale = min(1.0, max_norm / (5.0 + 1e-6))
        for param, g in zip(params, grads):
            np.testing.assert_allclose(backends.to_host(param.grad.data), g * scale, rtol=1e-6)


# =============================================================================================
# hyper-parameters out of range, and state of another model
# =============================================================================================
def _two_params():
    return [Parameter(np.ones((2, 3), np.float32)), Parameter(np.zeros(3, np.float32))]


@pytest.mark.parametrize(
    "make, setting",
    [
        (lambda p: optim.Adam(p, eps=-1), "eps"),
        (lambda p: optim.Adam(p, beta_1=1.0), "beta_1"),
        (lambda p: optim.Adam(p, beta_2=-0.1), "beta_2"),
        (lambda p: optim.AdamW(p, weight_decay=-0.01), "weight_decay"),
        (lambda p: optim.AdamW(p, eps=float("nan")), "eps"),
        (lambda p: optim.SGD(p, momentum=-0.9), "momentum"),
        (lambda p: optim.SGD(p, momentum=float("inf")), "momentum"),
        (lambda p: optim.AdaGrad(p, eps=-1e-10), "eps"),
        (lambda p: optim.AdaDelta(p, rho=1.5), "rho"),
        (lambda p: optim.AdaDelta(p, eps=-1), "eps"),
        (lambda p: optim.RMSProp(p, alpha=-0.5), "alpha"),
        (lambda p: optim.RMSProp(p, eps=-1), "eps"),
        (lambda p: optim.WeightDecay(float("nan")), "rate"),
    ],
)
def test_hyper_parameters_out_of_range_are_refused_naming_them(make, setting):
    with pytest.raises(ValueError, match=setting):
        make(_two_params())


@pytest.mark.parametrize(
    "make",
    [
        lambda p: optim.Adam(p, eps="1e-8"),
        lambda p: optim.SGD(p, lr="0.1"),
        lambda p: optim.SGD(p, momentum=True),
        lambda p: optim.SGD(p, momentum=0.9, nesterov="yes"),
        lambda p: optim.RMSProp(p, alpha=None),
        lambda p: optim.ClipGrad("1"),
    ],
)
def test_hyper_parameters_of_the_wrong_kind_are_type_errors(make):
    with pytest.raises(TypeError, match="must be"):
        make(_two_params())


def test_edge_values_of_hyper_parameters_are_accepted_as_in_pytorch():
    optim.Adam(_two_params(), beta_1=0.0, beta_2=0.0, eps=0.0)
    optim.SGD(_two_params(), momentum=0.0)
    optim.AdaDelta(_two_params(), rho=1.0)
    optim.AdamW(_two_params(), weight_decay=0.0)


def _trained(optimizer_class, params):
    optimizer = optimizer_class(params)
    for param in params:
        param.grad = Variable(np.ones_like(param.data))
    optimizer.step()
    return optimizer


def test_load_state_dict_refuses_the_state_of_a_model_with_fewer_parameters():
    small = [Parameter(np.ones((2, 3), np.float32)) for _ in range(6)]
    large = [Parameter(np.ones((2, 3), np.float32)) for _ in range(8)]
    saved = _trained(optim.Adam, small).state_dict()
    target = optim.Adam(large)
    with pytest.raises(ValueError, match="saved for 6 parameters, but this optimizer has 8"):
        target.load_state_dict(saved)
    assert target.state == [{} for _ in large]  # a refused state dict changes nothing


def test_load_state_dict_refuses_parameters_of_other_shapes_even_without_state():
    saved = optim.SGD(_two_params()).state_dict()  # no step yet: no per-parameter state
    other = [Parameter(np.ones((3, 2), np.float32)), Parameter(np.zeros(3, np.float32))]
    with pytest.raises(ValueError, match=r"parameter 0 had shape \(2, 3\) .* \(3, 2\)"):
        optim.SGD(other).load_state_dict(saved)


def test_load_state_dict_refuses_unknown_entries_and_out_of_range_settings():
    saved = _trained(optim.Adam, _two_params()).state_dict()
    with pytest.raises(ValueError, match="unknown entries"):
        optim.Adam(_two_params()).load_state_dict({**saved, "extra": 1})
    with pytest.raises(ValueError, match="eps"):
        optim.Adam(_two_params()).load_state_dict({**saved, "hyper": {**saved["hyper"], "eps": -1}})


def test_state_with_parameter_shapes_survives_a_checkpoint_and_0d_parameters(tmp_path):
    from pygrad.serialization import load_state, save_state

    params = [Parameter(np.float32(2.0)), Parameter(np.ones((2, 3), np.float32))]
    saved = _trained(optim.Adam, params).state_dict()
    restored = load_state(save_state(tmp_path / "opt", saved))
    target = optim.Adam([Parameter(np.float32(2.0)), Parameter(np.ones((2, 3), np.float32))])
    target.load_state_dict(restored)
    assert target.state[0]["step"] == 1
    with pytest.raises(ValueError, match=r"parameter 0 had shape \(\) .* \(1,\)"):
        optim.Adam([Parameter(np.ones(1, np.float32)), params[1]]).load_state_dict(restored)


def test_state_dicts_saved_before_parameter_shapes_still_load():
    saved = _trained(optim.Adam, _two_params()).state_dict()
    del saved["param_shapes"]
    optim.Adam(_two_params()).load_state_dict(saved)


@pytest.mark.parametrize(
    "make",
    [optim.SGD, optim.AdaGrad, optim.AdaDelta, optim.Adam, optim.AdamW, optim.RMSProp],
)
def test_every_optimizer_updates_a_0d_parameter_like_a_1_element_one(device, make):
    scalar = Parameter(np.float32(2.0)).to(device)
    vector = Parameter(np.array([2.0], np.float32)).to(device)
    optimizers = make([scalar]), make([vector])
    for _ in range(3):
        scalar.grad = Variable(np.float32(0.5), device=device)
        vector.grad = Variable(np.array([0.5], np.float32), device=device)
        for optimizer in optimizers:
            optimizer.step()
    assert scalar.shape == ()
    np.testing.assert_allclose(scalar.numpy(), vector.numpy()[0], rtol=1e-6)
