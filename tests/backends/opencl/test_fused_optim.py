"""The fused optimizer kernels of pygrad/backends/opencl/fused_optim.py against the CPU path."""

import numpy as np
import pytest

from pygrad import Parameter, Variable
from pygrad.backends import opencl as xp
from pygrad.nn import optim

pyopencl = pytest.importorskip("pyopencl")

CASES = [
    (optim.SGD, {"lr": 0.1}),
    (optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    (optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    (optim.AdaGrad, {"lr": 0.05}),
    (optim.AdaDelta, {"lr": 1.0, "rho": 0.9, "eps": 1e-6}),
    (optim.Adam, {"lr": 0.01}),
    (optim.AdamW, {"lr": 0.01, "weight_decay": 0.1}),
    (optim.RMSProp, {"lr": 0.01, "alpha": 0.9}),
]
IDS = [f"{cls.__name__}-{'-'.join(kwargs)}" for cls, kwargs in CASES]
SHAPES = [(5, 7), (13,)]
STEPS = 7
TOLERANCE = {np.float32: {"rtol": 1e-5, "atol": 1e-6}, np.float64: {"rtol": 1e-12, "atol": 1e-13}}


def _skip_without_float64(dtype, opencl):
    if dtype == np.float64 and not xp.get_device(opencl).supports_float64:
        pytest.skip("the OpenCL device has no float64")


def _train(cls, kwargs, device, dtype, hooks=()):
    """STEPS steps over two parameters; the second has no grad on steps 0, 1 and 4, and a
    StepLR halves the learning rate every third step.  Returns the parameters' data and the
    optimizer's state dict."""
    rng = np.random.default_rng(7)
    initial = [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]
    grads = [[rng.standard_normal(shape).astype(dtype) for shape in SHAPES] for _ in range(STEPS)]
    params = [Parameter(w.copy(), device=device) for w in initial]
    optimizer = cls(params, **kwargs)
    for hook in hooks:
        optimizer.add_hook(hook)
    scheduler = optim.StepLR(optimizer, step_size=3, gamma=0.5)
    for step, step_grads in enumerate(grads):
        for k, (param, g) in enumerate(zip(params, step_grads)):
            skip = k == 1 and step in (0, 1, 4)
            param.grad = None if skip else Variable(g, device=device)
        optimizer.step()
        scheduler.step()
    return [param.numpy() for param in params], optimizer.state_dict()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls, kwargs", CASES, ids=IDS)
def test_fused_update_matches_the_cpu_over_steps_with_a_scheduler_and_a_late_parameter(
    cls, kwargs, dtype, opencl
):
    _skip_without_float64(dtype, opencl)
    on_device, device_state = _train(cls, kwargs, opencl, dtype)
    on_cpu, cpu_state = _train(cls, kwargs, "cpu", dtype)
    for mine, reference in zip(on_device, on_cpu):
        assert mine.dtype == dtype
        np.testing.assert_allclose(mine, reference, **TOLERANCE[dtype])
    # The state too: a checkpoint taken on the device resumes on the CPU and back.
    assert device_state["hyper"] == cpu_state["hyper"]
    assert device_state["state"].keys() == cpu_state["state"].keys()
    for index, entries in cpu_state["state"].items():
        for name, value in entries.items():
            np.testing.assert_allclose(
                device_state["state"][index][name], value, **TOLERANCE[dtype]
            )


@pytest.mark.parametrize("cls, kwargs", CASES, ids=IDS)
def test_fused_update_with_weight_decay_and_clipping_hooks_matches_the_cpu(cls, kwargs, opencl):
    def hooks():
        return (optim.WeightDecay(0.01), optim.ClipGrad(2.0))

    on_device, _ = _train(cls, kwargs, opencl, np.float32, hooks())
    on_cpu, _ = _train(cls, kwargs, "cpu", np.float32, hooks())
    for mine, reference in zip(on_device, on_cpu):
        np.testing.assert_allclose(mine, reference, **TOLERANCE[np.float32])


@pytest.mark.parametrize("cls, kwargs", CASES, ids=IDS)
def test_every_step_launches_one_kernel_per_parameter_and_compiles_nothing_new(
    cls, kwargs, opencl, launches, monkeypatch
):
    rng = np.random.default_rng(0)
    params = [Parameter(rng.standard_normal(s).astype(np.float32), device=opencl) for s in SHAPES]
    optimizer = cls(params, **kwargs)
    scheduler = optim.CosineAnnealingLR(optimizer, T_max=4)
    grads = [Variable(rng.standard_normal(s).astype(np.float32), device=opencl) for s in SHAPES]

    def step(with_grad):
        for param, grad, has in zip(params, grads, with_grad):
            param.grad = grad if has else None
        launches[0] = 0
        optimizer.step()
        scheduler.step()
        return launches[0]

    # The first step may also fill new state arrays with zeros (one launch each).
    fills = len(cls.state_names)
    assert len(params) <= step((True, True)) <= len(params) * (1 + fills)
    device = xp.get_device(opencl)
    kernels_after_first_step = len(device.kernels)

    def no_build(*args, **kwargs):
        raise AssertionError("a step compiled a program")

    # lr changes every step (cosine), and Adam's bias corrections with the step count: all
    # are run-time arguments.
    monkeypatch.setattr(pyopencl.Program, "build", no_build)
    for _ in range(3):
        assert step((True, True)) == len(params)
    assert step((True, False)) == 1
    assert len(device.kernels) == kernels_after_first_step


def test_a_transposed_grad_is_copied_once_and_then_takes_the_fused_update(opencl, launches):
    # A convolution's weight gradient can arrive as a transposed view of its product.
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((4, 6)).astype(np.float32)
    g0 = rng.standard_normal((4, 6)).astype(np.float32)
    results = {}
    for device in ("cpu", opencl):
        param = Parameter(w0.copy(), device=device)
        optimizer = optim.Adam([param], lr=0.1)
        for _ in range(3):
            if device == opencl:
                param.grad = Variable(xp.asarray(g0.T.copy(), device=opencl).T)
                assert not param.grad.data.is_c_contiguous
            else:
                param.grad = Variable(g0)
            launches[0] = 0
            optimizer.step()
        if device == opencl:
            assert launches[0] == 2  # the copy and the update
        results[device] = param.numpy()
    np.testing.assert_allclose(results[opencl], results["cpu"], **TOLERANCE[np.float32])


def test_the_weight_decay_hook_launches_one_kernel_per_parameter(opencl, launches):
    rng = np.random.default_rng(0)
    params = [Parameter(rng.standard_normal(s).astype(np.float32), device=opencl) for s in SHAPES]
    grads = [Variable(rng.standard_normal(s).astype(np.float32), device=opencl) for s in SHAPES]
    for param, grad in zip(params, grads):
        param.grad = grad
    hook = optim.WeightDecay(0.1)
    hook(params)
    launches[0] = 0
    for param, grad in zip(params, grads):
        param.grad = grad
    hook(params)
    assert launches[0] == len(params)
    for param, grad in zip(params, grads):
        assert param.grad is not grad
        expected = grad.numpy() + np.float32(0.1) * param.numpy()
        np.testing.assert_array_equal(param.grad.numpy(), expected)


@pytest.mark.parametrize("cls, kwargs", CASES, ids=IDS)
def test_a_step_with_hooks_never_reads_device_data_on_the_host(cls, kwargs, opencl, monkeypatch):
    rng = np.random.default_rng(0)
    params = [Parameter(rng.standard_normal(s).astype(np.float32), device=opencl) for s in SHAPES]
    optimizer = cls(params, **kwargs)
    optimizer.add_hook(optim.WeightDecay(0.01))
    optimizer.add_hook(optim.ClipGrad(0.5))
    scheduler = optim.StepLR(optimizer, step_size=1)

    def host_read(*args, **kwargs):
        raise AssertionError("a step read device data on the host")

    for s, param in zip(SHAPES, params):
        param.grad = Variable(rng.standard_normal(s).astype(np.float32), device=opencl)
    monkeypatch.setattr(xp.ndarray, "get", host_read)
    monkeypatch.setattr(pyopencl, "enqueue_copy", host_read)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    monkeypatch.undo()
    assert all(np.isfinite(param.numpy()).all() for param in params)


@pytest.mark.parametrize("cls, kwargs", CASES, ids=IDS)
def test_strided_parameters_and_grads_take_the_ufunc_path_and_match_the_cpu(cls, kwargs, opencl):
    rng = np.random.default_rng(3)
    w0 = rng.standard_normal((6, 4)).astype(np.float32)
    grads = [rng.standard_normal((4, 6)).astype(np.float32) for _ in range(4)]
    results = {}
    for device in ("cpu", opencl):
        # A transposed parameter, and grads that are transposed (strided) or broadcast views.
        data = xp.asarray(w0, device=opencl).T if device == opencl else w0.T.copy()
        param = Parameter(data)
        optimizer = cls([param], **kwargs)
        for step, g in enumerate(grads):
            if device == opencl:
                view = xp.asarray(g.T.copy(), device=opencl).T
                if step == 2:
                    view = xp.broadcast_to(xp.asarray(g[:1], device=opencl), g.shape)
            else:
                view = g if step != 2 else np.broadcast_to(g[:1], g.shape)
            param.grad = Variable(view)
            optimizer.step()
        results[device] = param.numpy()
    np.testing.assert_allclose(results[opencl], results["cpu"], **TOLERANCE[np.float32])


def test_a_parameter_and_its_grad_of_different_dtypes_take_the_ufunc_path(opencl):
    results = {}
    for device in ("cpu", opencl):
        param = Parameter(np.ones(5, np.float32), device=device)
        optimizer = optim.Adam([param], lr=0.1)
        for _ in range(3):
            param.grad = Variable(np.linspace(-1, 1, 5), device=device)  # float64
            optimizer.step()
        results[device] = param.numpy()
    assert results[opencl].dtype == np.float32
    np.testing.assert_allclose(results[opencl], results["cpu"], **TOLERANCE[np.float32])


def test_fused_update_refuses_mismatched_arrays_without_touching_them(opencl):
    from pygrad.backends import fused_op

    adam = fused_op(xp, "adam_update")
    param = xp.asarray(np.ones(4, np.float32), device=opencl)
    grad = xp.asarray(np.ones(4, np.float32), device=opencl)
    state = [xp.zeros(4, np.float32, device=opencl) for _ in range(2)]
    scalars = (1.0, 0.9, 0.1, 0.999, 0.001, 0.1, 1e-8, 0.01)
    wrong_shape = xp.zeros(5, np.float32, device=opencl)
    assert not adam(param, grad, (state[0], wrong_shape), scalars)
    assert not adam(param, grad.astype(np.float64), state, scalars)
    assert not adam(param, param, state, scalars)
    np.testing.assert_array_equal(param.get(), np.ones(4, np.float32))
    assert adam(param, grad, state, scalars)
    assert (param.get() < 1).all()


def test_argument_buffers_evicted_from_a_full_cache_leave_results_unchanged(opencl, monkeypatch):
    from pygrad.backends.opencl import runtime

    monkeypatch.setattr(runtime, "_ARG_CACHE_SIZE", 4)
    results = {}
    for device in ("cpu", opencl):
        param = Parameter(np.ones(9, np.float32), device=device)
        optimizer = optim.Adam([param], lr=0.1)
        scheduler = optim.CosineAnnealingLR(optimizer, T_max=10)
        for step in range(10):  # new bias corrections and lr each step: the cache overflows
            param.grad = Variable(np.linspace(-1, 1, 9, dtype=np.float32) * step, device=device)
            optimizer.step()
            scheduler.step()
        results[device] = param.numpy()
    assert len(xp.get_device(opencl)._arg_buffers) <= 4
    np.testing.assert_allclose(results[opencl], results["cpu"], **TOLERANCE[np.float32])
