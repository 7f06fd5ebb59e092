"""Optimizers, gradient hooks and learning-rate schedulers.

Every update follows PyTorch's formulas and happens in place on the parameter's own array, on
its own device, with ufuncs writing into their ``out=`` arrays: a step allocates at most one
scratch array the size of the parameter, besides the state on the first step.  A backend with
a fused kernel for an update (OpenCL: :mod:`pygrad.backends.opencl.fused_optim`) runs that
instead: one launch per parameter, the same arithmetic, and the learning rate and bias
corrections as run-time arguments.  Per-parameter state is keyed by the parameter's position
in the list given to the optimizer, so :meth:`Optimizer.state_dict` can be saved and loaded
into a fresh optimizer to resume training exactly.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from pygrad.backends import device_of, fused_op, get_array_module, to_device, to_host
from pygrad.core import Variable

__all__ = [
    "Optimizer",
    "SGD",
    "AdaGrad",
    "AdaDelta",
    "Adam",
    "AdamW",
    "RMSProp",
    "WeightDecay",
    "ClipGrad",
    "LRScheduler",
    "StepLR",
    "CosineAnnealingLR",
]


class Optimizer:
    """Base class: holds the parameters, runs hooks, then updates every parameter with a grad.

    Subclasses set ``state_names`` (the per-parameter arrays they keep) and implement
    ``update(param, grad, state)`` working in place on ``param.data``.  The state key
    ``"step"`` is reserved for a parameter's own count of updates (a Python int), which
    optimizers whose formulas depend on it keep: a parameter without a grad on some steps is
    not updated on them, so its count can lag behind the optimizer's ``steps``.

    Parameters
    ----------
    params : iterable of Parameter
        Usually ``model.params()``; the order fixes how state is keyed.
    lr : float
        The learning rate; must be positive.  The default is SGD's, so that a subclass may
        call ``super().__init__(params)`` alone.
    """

    state_names: tuple = ()
    hyper_names: tuple = ("lr",)

    def __init__(self, params, lr: float = 0.01):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        self.lr = _checked_lr(self, lr)
        self.hooks = []
        self.steps = 0
        self.state = [{} for _ in self.params]

    def add_hook(self, hook) -> None:
        """Call ``hook(params)`` before every update (see :class:`WeightDecay`, :class:`ClipGrad`)."""
        self.hooks.append(hook)

    def zero_grad(self) -> None:
        """Set the gradient of every parameter to None."""
        for param in self.params:
            param.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient."""
        for hook in self.hooks:
            hook(self.params)
        self.steps += 1
        for param, state in zip(self.params, self.state):
            if param.grad is None:
                continue
            if not state and self.state_names:
                xp = get_array_module(param.data)
                for name in self.state_names:
                    state[name] = xp.zeros_like(param.data)
            self.update(param, param.grad.data, state)

    def update(self, param, grad, state) -> None:
        """Update one parameter in place; subclasses define it.

        Parameters
        ----------
        param : Parameter
            Its ``data`` is changed in place, on its own device.
        grad : array
            The gradient's array, shaped like ``param``; it may be shared with other
            parameters, so it must not be changed.
        state : dict
            This parameter's state: the ``state_names`` arrays (zeros on its first update) and
            anything else the optimizer keeps there.
        """
        raise NotImplementedError(f"{type(self).__name__} must define update()")

    def state_dict(self) -> dict:
        """Return the hyper-parameters, the step count, the per-parameter state and the
        parameters' shapes (so that the state is never loaded into a different model).

        Arrays are NumPy copies; the dict is a nested dict of arrays and numbers, as
        :func:`pygrad.serialization.save_state` writes.  ``"param_shapes"`` holds, per
        parameter, ``[ndim, *shape]`` (never empty, also for a 0-d parameter).
        """
        return {
            "hyper": {name: getattr(self, name) for name in self.hyper_names},
            "steps": self.steps,
            "param_shapes": {
                str(index): np.array([param.ndim, *param.shape], dtype=np.int64)
                for index, param in enumerate(self.params)
            },
            "state": {
                str(index): {name: _host_copy(value) for name, value in state.items()}
                for index, state in enumerate(self.state)
                if state
            },
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` returned, onto each parameter's device.

        Hyper-parameters take the saved values as they are, whatever this optimizer was built
        with: a float learning rate stays a float here even if the optimizer was given an int.

        Raises
        ------
        ValueError
            When an entry or a setting is unknown, a setting is out of its range (the learning
            rate negative or not finite, say), the state was saved for a different number of
            parameters or for parameters of other shapes, or a state array does not match its
            parameter's shape.  A learning rate of zero loads: a scheduler annealing to
            ``eta_min=0`` reaches it, and a checkpoint taken then must resume.  State dicts
            from before ``"param_shapes"`` was saved load without that check.
        """
        owner = f"{type(self).__name__}.load_state_dict"
        unknown = sorted(set(state_dict) - {"hyper", "steps", "state", "param_shapes"})
        if unknown:
            raise ValueError(f"{owner}: unknown entries {unknown}")
        if "param_shapes" in state_dict:
            self._check_param_shapes(state_dict["param_shapes"], owner)
        hyper = {}
        for name, value in state_dict.get("hyper", {}).items():
            if name not in self.hyper_names:
                raise ValueError(f"{owner}: unknown setting {name!r}")
            hyper[name] = _plain_number(value)
        if "lr" in hyper and not (hyper["lr"] >= 0 and math.isfinite(hyper["lr"])):
            raise ValueError(
                f"{owner}: the learning rate must be non-negative and finite, got {hyper['lr']}"
            )
        for name, value in hyper.items():
            if name in _HYPER_RANGES:
                _checked_hyper(owner, **{name: value})
        new_state = [{} for _ in self.params]
        for key, entries in state_dict.get("state", {}).items():
            index = int(key)
            if not 0 <= index < len(self.params):
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: state for parameter {index}, "
                    f"but the optimizer has {len(self.params)} parameters"
                )
            param = self.params[index]
            for name, array in entries.items():
                if name == "step":
                    new_state[index][name] = int(array)
                    continue
                array = np.asarray(array)
                if array.shape != param.shape:
                    raise ValueError(
                        f"{type(self).__name__}.load_state_dict: state {name!r} of parameter {index} "
                        f"has shape {array.shape}, the parameter has shape {param.shape}"
                    )
                new_state[index][name] = to_device(array.astype(param.dtype), device_of(param.data))
        # Nothing changes until everything has been checked: a refused state dict leaves the
        # optimizer as it was.
        for name, value in hyper.items():
            setattr(self, name, value)
        self.steps = int(state_dict.get("steps", 0))
        self.state = new_state

    def _check_param_shapes(self, saved: dict, owner: str) -> None:
        """Raise unless ``saved`` (a state dict's ``"param_shapes"``) describes these
        parameters: as many, in the same order, of the same shapes."""
        if len(saved) != len(self.params):
            raise ValueError(
                f"{owner}: the state was saved for {len(saved)} parameters, but this "
                f"optimizer has {len(self.params)}; load it into an optimizer of the same model"
            )
        for index, param in enumerate(self.params):
            entry = saved.get(str(index))
            entry = None if entry is None else np.asarray(entry).ravel()
            shape = None if entry is None or entry.size < 1 else tuple(int(n) for n in entry[1:])
            if shape is None or len(shape) != int(entry[0]):
                raise ValueError(f"{owner}: param_shapes has no valid entry for parameter {index}")
            if shape != param.shape:
                raise ValueError(
                    f"{owner}: parameter {index} had shape {shape} when the state was saved, "
                    f"but has shape {param.shape} here; load it into an optimizer of the same "
                    "model"
                )

    def __repr__(self) -> str:
        settings = ", ".join(f"{name}={getattr(self, name)}" for name in self.hyper_names)
        return f"{type(self).__name__}({settings})"


def _fused_update(grad, name: str):
    """The fused kernel ``name`` of ``grad``'s backend, or None (NumPy has none, and is not
    asked, so that the CPU path pays nothing)."""
    if type(grad) is np.ndarray:
        return None
    return fused_op(get_array_module(grad), name)


def _checked_lr(optimizer: Optimizer, lr: float) -> float:
    _check_number(type(optimizer).__name__, "the learning rate", lr)
    if not lr > 0:
        raise ValueError(
            f"{type(optimizer).__name__}: the learning rate must be positive, got {lr}"
        )
    return lr


# What each hyper-parameter may be (PyTorch's ranges; RMSProp's alpha and AdaDelta's rho weigh
# a running average, so they stay in [0, 1]).  The learning rate has its own check: it must be
# positive when given, but a state dict may hold zero (see load_state_dict).
_HYPER_RANGES = {
    "eps": (lambda v: v >= 0, "non-negative"),
    "momentum": (lambda v: v >= 0, "non-negative"),
    "weight_decay": (lambda v: v >= 0, "non-negative"),
    "beta_1": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "beta_2": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "rho": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "alpha": (lambda v: 0 <= v <= 1, "in [0, 1]"),
}


def _check_number(owner: str, name: str, value) -> None:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{owner}: {name} must be a real number, got {value!r} of type {type(value).__name__}"
        )
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be finite, got {value}")


def _checked_hyper(owner: str, **settings) -> tuple:
    """Return ``settings``' values after checking each against ``_HYPER_RANGES``, or raise
    naming ``owner``, the setting and its value."""
    for name, value in settings.items():
        _check_number(owner, name, value)
        within, allowed = _HYPER_RANGES[name]
        if not within(value):
            raise ValueError(f"{owner}: {name} must be {allowed}, got {value}")
    return tuple(settings.values())


def _plain_number(value):
    # A 0-d array or NumPy scalar (from a hand-made dict) becomes a Python number.
    return value.item() if isinstance(value, (np.ndarray, np.generic)) else value


def _host_copy(value):
    if isinstance(value, int):
        return value
    return value.copy() if type(value) is np.ndarray else to_host(value)


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, as in PyTorch.

    ``buf = momentum * buf + g`` (``buf = g`` on the first step), then ``p -= lr * buf``, or with
    Nesterov ``p -= lr * (g + momentum * buf)``.
    """

    hyper_names = ("lr", "momentum", "nesterov")

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False):
        super().__init__(params, lr)
        (momentum,) = _checked_hyper("SGD", momentum=momentum)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"SGD: nesterov must be True or False, got {nesterov!r}")
        if nesterov and momentum <= 0:
            raise ValueError("SGD: Nesterov momentum needs momentum > 0")
        self.momentum, self.nesterov = momentum, nesterov

    def update(self, param, grad, state) -> None:
        if self.momentum == 0:
            fused = _fused_update(grad, "sgd_update")
            if fused is None or not fused(param.data, grad, (), (self.lr,)):
                param.data -= self.lr * grad
            return
        buf = state.get("momentum_buffer")
        fused = _fused_update(grad, "sgd_momentum_update")
        if fused is not None:
            # On the first step the kernel fills the new buffer with the gradient.
            new = get_array_module(grad).empty_like(grad) if buf is None else buf
            flags = (buf is None) | (self.nesterov << 1)
            if fused(param.data, grad, (new,), (self.lr, self.momentum), flags):
                state["momentum_buffer"] = new
                return
        if buf is None:
            buf = state["momentum_buffer"] = grad.copy()
        else:
            buf *= self.momentum
            buf += grad
        if self.nesterov:
            xp = get_array_module(grad)
            scratch = xp.multiply(buf, self.momentum)
            scratch += grad
            scratch *= self.lr
            param.data -= scratch
        else:
            param.data -= self.lr * buf


class AdaGrad(Optimizer):
    """AdaGrad: ``s += g**2``, ``p -= lr * g / (sqrt(s) + eps)``."""

    state_names = ("sum",)
    hyper_names = ("lr", "eps")

    def __init__(self, params, lr: float = 0.01, eps: float = 1e-10):
        super().__init__(params, lr)
        (self.eps,) = _checked_hyper("AdaGrad", eps=eps)

    def update(self, param, grad, state) -> None:
        total = state["sum"]
        fused = _fused_update(grad, "adagrad_update")
        if fused is not None and fused(param.data, grad, (total,), (self.lr, self.eps)):
            return
        xp = get_array_module(grad)
        scratch = xp.multiply(grad, grad, out=xp.empty_like(grad))  # an array also when 0-d
        total += scratch
        xp.sqrt(total, out=scratch)
        scratch += self.eps
        xp.divide(grad, scratch, out=scratch)
        scratch *= self.lr
        param.data -= scratch


class AdaDelta(Optimizer):
    """AdaDelta (Zeiler, 2012) with PyTorch's ``lr`` factor on the step."""

    state_names = ("square_avg", "acc_delta")
    hyper_names = ("lr", "rho", "eps")

    def __init__(self, params, lr: float = 1.0, rho: float = 0.95, eps: float = 1e-6):
        super().__init__(params, lr)
        self.rho, self.eps = _checked_hyper("AdaDelta", rho=rho, eps=eps)

    def update(self, param, grad, state) -> None:
        rho, eps = self.rho, self.eps
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        fused = _fused_update(grad, "adadelta_update")
        if fused is not None and fused(
            param.data, grad, (square_avg, acc_delta), (self.lr, rho, 1 - rho, eps)
        ):
            return
        xp = get_array_module(grad)
        # The algorithm needs two scratch arrays: the denominator and the step itself.
        scratch = xp.multiply(grad, grad, out=xp.empty_like(grad))  # an array also when 0-d
        scratch *= 1 - rho
        square_avg *= rho
        square_avg += scratch
        xp.add(square_avg, eps, out=scratch)
        delta = xp.add(acc_delta, eps, out=xp.empty_like(acc_delta))
        delta /= scratch
        xp.sqrt(delta, out=delta)
        delta *= grad
        xp.multiply(delta, self.lr, out=scratch)
        param.data -= scratch
        delta *= delta
        delta *= 1 - rho
        acc_delta *= rho
        acc_delta += delta


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015) with bias correction, in PyTorch's arrangement.

    The bias correction of a parameter uses its own number of updates (state ``"step"``), not
    the optimizer's: one that had no grad on the first steps starts its correction afresh.
    """

    state_names = ("exp_avg", "exp_avg_sq")
    hyper_names = ("lr", "beta_1", "beta_2", "eps")
    weight_decay = 0.0  # AdamW's decoupled decay; Adam has none

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        eps: float = 1e-8,
    ):
        super().__init__(params, lr)
        self.beta_1, self.beta_2, self.eps = _checked_hyper(
            type(self).__name__, beta_1=beta_1, beta_2=beta_2, eps=eps
        )

    def update(self, param, grad, state) -> None:
        beta_1, beta_2 = self.beta_1, self.beta_2
        step = state["step"] = state.get("step", 0) + 1
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        # AdamW's decoupled weight decay scales the parameter first; Adam's factor is one.
        decay = 1 - self.lr * self.weight_decay
        fused = _fused_update(grad, "adam_update")
        if fused is not None:
            correction_1 = 1 - beta_1**step
            scalars = (
                decay,
                beta_1,
                1 - beta_1,
                beta_2,
                1 - beta_2,
                math.sqrt(1 - beta_2**step),
                self.eps,
                self.lr / correction_1,
            )
            if fused(param.data, grad, (exp_avg, exp_avg_sq), scalars):
                return
        if self.weight_decay:
            param.data *= decay
        xp = get_array_module(grad)
        scratch = xp.multiply(grad, 1 - beta_1, out=xp.empty_like(grad))  # an array when 0-d
        exp_avg *= beta_1
        exp_avg += scratch
        xp.multiply(grad, grad, out=scratch)
        scratch *= 1 - beta_2
        exp_avg_sq *= beta_2
        exp_avg_sq += scratch
        correction_1 = 1 - beta_1**step
        correction_2 = 1 - beta_2**step
        xp.sqrt(exp_avg_sq, out=scratch)
        scratch /= math.sqrt(correction_2)
        scratch += self.eps
        xp.divide(exp_avg, scratch, out=scratch)
        scratch *= self.lr / correction_1
        param.data -= scratch

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` returned (see :meth:`Optimizer.load_state_dict`).

        State saved before parameters counted their own steps has no ``"step"``; its bias
        correction used the optimizer's step count, which is what such a parameter resumes from.
        """
        super().load_state_dict(state_dict)
        for state in self.state:
            if state and "step" not in state:
                state["step"] = self.steps


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p *= 1 - lr * weight_decay`` before each Adam step."""

    hyper_names = ("lr", "beta_1", "beta_2", "eps", "weight_decay")

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ):
        super().__init__(params, lr, beta_1, beta_2, eps)
        (self.weight_decay,) = _checked_hyper("AdamW", weight_decay=weight_decay)


class RMSProp(Optimizer):
    """RMSProp: ``v = alpha * v + (1 - alpha) * g**2``, ``p -= lr * g / (sqrt(v) + eps)``."""

    state_names = ("square_avg",)
    hyper_names = ("lr", "alpha", "eps")

    def __init__(self, params, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8):
        super().__init__(params, lr)
        self.alpha, self.eps = _checked_hyper("RMSProp", alpha=alpha, eps=eps)

    def update(self, param, grad, state) -> None:
        square_avg = state["square_avg"]
        alpha = self.alpha
        fused = _fused_update(grad, "rmsprop_update")
        if fused is not None and fused(
            param.data, grad, (square_avg,), (self.lr, alpha, 1 - alpha, self.eps)
        ):
            return
        xp = get_array_module(grad)
        scratch = xp.multiply(grad, grad, out=xp.empty_like(grad))  # an array also when 0-d
        scratch *= 1 - self.alpha
        square_avg *= self.alpha
        square_avg += scratch
        xp.sqrt(square_avg, out=scratch)
        scratch += self.eps
        xp.divide(grad, scratch, out=scratch)
        scratch *= self.lr
        param.data -= scratch


# --- hooks ---------------------------------------------------------------------------------
class WeightDecay:
    """Hook adding ``rate * p`` to each gradient (L2 regularisation, PyTorch's ``weight_decay``)."""

    def __init__(self, rate: float):
        _check_number("WeightDecay", "the rate", rate)
        if rate < 0:
            raise ValueError(f"WeightDecay: the rate must be non-negative, got {rate}")
        self.rate = rate

    def __call__(self, params) -> None:
        for param in params:
            if param.grad is None:
                continue
            grad = param.grad.data
            # A new Variable each: backward may hand one grad object to several leaves.
            fused = _fused_update(grad, "weight_decay_grad")
            if fused is not None:
                decayed = get_array_module(grad).empty_like(param.data)
                if fused(param.data, grad, (decayed,), (self.rate,)):
                    param.grad = Variable(decayed)
                    continue
            param.grad = Variable(grad + self.rate * param.data)


class ClipGrad:
    """Hook scaling all gradients together so that their global L2 norm is at most ``max_norm``.

    When every gradient lives on one accelerator the norm stays there: each gradient is
    multiplied by ``min(1, max_norm / (norm + 1e-6))`` on the device (a factor of one changes
    nothing), so a step never waits for the device to hand the norm to the host.
    """

    def __init__(self, max_norm: float):
        _check_number("ClipGrad", "max_norm", max_norm)
        if not max_norm > 0:
            raise ValueError(f"ClipGrad: max_norm must be positive, got {max_norm}")
        self.max_norm = max_norm

    def __call__(self, params) -> None:
        with_grad = [param for param in params if param.grad is not None]
        if not with_grad:
            return
        grads = [param.grad.data for param in with_grad]
        devices = {device_of(grad) for grad in grads}
        if len(devices) == 1 and "cpu" not in devices:
            self._clip_on_device(with_grad, grads)
            return
        # On the CPU, or across devices, the norm is a host number.
        total = math.sqrt(sum(float((p.grad.data * p.grad.data).sum()) for p in with_grad))
        rate = self.max_norm / (total + 1e-6)
        if rate < 1:
            for param in with_grad:
                # A new Variable each: backward may hand one grad object to several leaves.
                param.grad = Variable(param.grad.data * rate)

    def _clip_on_device(self, with_grad, grads) -> None:
        xp = get_array_module(grads[0])
        total = None
        for grad in grads:
            square = (grad * grad).sum()
            total = square if total is None else total + square
        rate = xp.minimum(self.max_norm / (xp.sqrt(total) + 1e-6), 1.0)
        for param, grad in zip(with_grad, grads):
            # A new Variable each: backward may hand one grad object to several leaves.
            param.grad = Variable(grad * rate)


# --- schedulers ----------------------------------------------------------------------------
class LRScheduler:
    """Base class of the schedulers: counts epochs and sets the optimizer's learning rate.

    Subclasses name what :meth:`state_dict` keeps in ``state_names`` (the epoch count, the
    initial learning rate and their own settings) and give the learning rate after an epoch
    in ``lr_at(epoch)``.

    Parameters
    ----------
    optimizer : Optimizer
        Whose ``lr`` is set; its value now is the initial learning rate.
    """

    state_names: tuple = ("epoch", "base_lr")

    def __init__(self, optimizer: Optimizer):
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.epoch = 0

    def step(self) -> None:
        """Advance one epoch and set the optimizer's learning rate."""
        self.epoch += 1
        self.optimizer.lr = self.lr_at(self.epoch)

    def lr_at(self, epoch: int) -> float:
        """Return the learning rate after ``epoch`` calls of :meth:`step`."""
        raise NotImplementedError(f"{type(self).__name__} must define lr_at()")

    def get_last_lr(self) -> float:
        """Return the learning rate the optimizer has now."""
        return self.optimizer.lr

    def state_dict(self) -> dict:
        """Return the epoch count, the initial learning rate and the settings, as numbers.

        Together with the optimizer's :meth:`Optimizer.state_dict` this resumes the schedule
        exactly; :func:`pygrad.serialization.save_state` can write it.
        """
        return {name: getattr(self, name) for name in self.state_names}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` returned; the optimizer's learning rate is left as is.

        Raises
        ------
        ValueError
            When an entry is unknown or missing.
        """
        owner = f"{type(self).__name__}.load_state_dict"
        unknown = sorted(set(state_dict) - set(self.state_names))
        if unknown:
            raise ValueError(f"{owner}: unknown entries {unknown}")
        missing = [name for name in self.state_names if name not in state_dict]
        if missing:
            raise ValueError(f"{owner}: missing entries {missing}")
        for name in self.state_names:
            setattr(self, name, _plain_number(state_dict[name]))
        self.epoch = int(self.epoch)


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` calls of :meth:`step`.

    Parameters
    ----------
    optimizer : Optimizer
        Whose ``lr`` is set; its value now is the initial learning rate.
    step_size : int
        Epochs between two decays; must be positive.
    gamma : float
        The factor of each decay.
    """

    state_names = ("epoch", "base_lr", "step_size", "gamma")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        if step_size <= 0:
            raise ValueError(f"StepLR: step_size must be positive, got {step_size}")
        super().__init__(optimizer)
        self.step_size, self.gamma = step_size, gamma

    def lr_at(self, epoch: int) -> float:
        """Return ``base_lr * gamma ** (epoch // step_size)``."""
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """Anneal the learning rate from its initial value to ``eta_min`` along a half cosine.

    Over ``T_max`` epochs: ``eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2``.

    Parameters
    ----------
    optimizer : Optimizer
        Whose ``lr`` is set; its value now is the initial learning rate.
    T_max : int
        Epochs of the half cosine; must be positive.
    eta_min : float
        The learning rate reached after ``T_max`` epochs.
    """

    state_names = ("epoch", "base_lr", "T_max", "eta_min")

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max}")
        super().__init__(optimizer)
        self.T_max, self.eta_min = T_max, eta_min

    def lr_at(self, epoch: int) -> float:
        """Return the learning rate after ``epoch`` epochs (the formula above)."""
        cosine = (1 + math.cos(math.pi * epoch / self.T_max)) / 2
        return self.eta_min + (self.base_lr - self.eta_min) * cosine
