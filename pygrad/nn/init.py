"""Weight initialisers with fan-in/fan-out scaling, drawn from NumPy's global random state
(so ``numpy.random.seed`` makes them reproducible)."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["he_normal", "he_uniform", "glorot_uniform", "uniform_fan_in", "zeros", "ones"]


def he_normal(shape, fan_in: int, dtype=np.float32) -> np.ndarray:
    """Normal samples with standard deviation ``sqrt(2 / fan_in)`` (He et al., for ReLU nets)."""
    return (np.random.standard_normal(shape) * math.sqrt(2.0 / fan_in)).astype(dtype)


def he_uniform(shape, fan_in: int, dtype=np.float32) -> np.ndarray:
    """Uniform samples in ``±sqrt(6 / fan_in)``: the He variance with bounded values."""
    bound = math.sqrt(6.0 / fan_in)
    return np.random.uniform(-bound, bound, shape).astype(dtype)


def glorot_uniform(shape, fan_in: int, fan_out: int, dtype=np.float32) -> np.ndarray:
    """Uniform samples in ``±sqrt(6 / (fan_in + fan_out))`` (Glorot and Bengio, for tanh/sigmoid)."""
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return np.random.uniform(-bound, bound, shape).astype(dtype)


def uniform_fan_in(shape, fan_in: int, dtype=np.float32) -> np.ndarray:
    """Uniform samples in ``±1 / sqrt(fan_in)``, PyTorch's choice for biases and recurrent weights."""
    bound = 1.0 / math.sqrt(fan_in)
    return np.random.uniform(-bound, bound, shape).astype(dtype)


def zeros(shape, dtype=np.float32) -> np.ndarray:
    """An array of zeros."""
    return np.zeros(shape, dtype=dtype)


def ones(shape, dtype=np.float32) -> np.ndarray:
    """An array of ones."""
    return np.ones(shape, dtype=dtype)
