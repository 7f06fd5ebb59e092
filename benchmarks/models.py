"""The models the benchmarks train, in pygrad and in PyTorch, and one training step of each.

``mlp``: MLP 784-512-512-10 with ReLU, batch 128, SGD; ``cnn``: conv 1->16 3x3 pad 1, ReLU,
2x2 max pool, conv 16->32 3x3 pad 1, ReLU, 2x2 max pool, linear 1568->10, batch 64 of 1x28x28,
SGD; ``digits``: the CNN of ``examples/digits_cnn.py``, batch 32 of 1x8x8, Adam.  Float32 data,
softmax cross entropy.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_example(name: str):
    """Import ``examples/<name>.py`` (its folder holds ``_common``, which it imports)."""
    folder = os.path.join(ROOT, "examples")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(f"example_{name}", os.path.join(folder, name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pygrad_model(kind: str):
    """A pygrad model with its input shape, batch, optimizer class and learning rate."""
    from pygrad import nn

    if kind == "mlp":
        model = nn.Sequential(
            nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)
        )
        return model, (128, 784), nn.optim.SGD, 0.01
    if kind == "cnn":
        model = nn.Sequential(
            nn.Conv2d(1, 16, 3, pad=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, pad=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(1568, 10),
        )
        return model, (64, 1, 28, 28), nn.optim.SGD, 0.01
    if kind == "digits":
        model = _load_example("digits_cnn.py").CNN()
        return model, (32, 1, 8, 8), nn.optim.Adam, 2e-3
    raise ValueError(f"unknown model {kind!r}")


def torch_model(torch, kind: str):
    """The PyTorch twin of :func:`pygrad_model`."""
    nn_ = torch.nn
    if kind == "mlp":
        model = nn_.Sequential(
            nn_.Linear(784, 512), nn_.ReLU(), nn_.Linear(512, 512), nn_.ReLU(), nn_.Linear(512, 10)
        )
        return model, (128, 784), torch.optim.SGD, 0.01
    if kind == "cnn":
        model = nn_.Sequential(
            nn_.Conv2d(1, 16, 3, padding=1),
            nn_.ReLU(),
            nn_.MaxPool2d(2),
            nn_.Conv2d(16, 32, 3, padding=1),
            nn_.ReLU(),
            nn_.MaxPool2d(2),
            nn_.Flatten(),
            nn_.Linear(1568, 10),
        )
        return model, (64, 1, 28, 28), torch.optim.SGD, 0.01
    if kind == "digits":
        # examples/digits_cnn.py's CNN: conv-bn-relu, conv-bn-relu-pool, fc-relu-dropout, fc.
        model = nn_.Sequential(
            nn_.Conv2d(1, 16, 3, padding=1),
            nn_.BatchNorm2d(16),
            nn_.ReLU(),
            nn_.Conv2d(16, 32, 3, padding=1),
            nn_.BatchNorm2d(32),
            nn_.ReLU(),
            nn_.MaxPool2d(2),
            nn_.Flatten(),
            nn_.Linear(512, 128),
            nn_.ReLU(),
            nn_.Dropout(0.3),
            nn_.Linear(128, 10),
        )
        return model, (32, 1, 8, 8), torch.optim.Adam, 2e-3
    raise ValueError(f"unknown model {kind!r}")


def pygrad_step(kind: str, device: str) -> Callable[[], None]:
    """One training step of model ``kind`` on ``device`` (data already there), as a closure."""
    from pygrad import Variable
    from pygrad import functions as F

    rng = np.random.default_rng(0)
    np.random.seed(0)
    model, shape, optimizer_class, lr = pygrad_model(kind)
    model.to(device)
    x = Variable(rng.standard_normal(shape).astype(np.float32), device=device)
    t = Variable(rng.integers(0, 10, shape[0]), device=device)
    optimizer = optimizer_class(model.params(), lr=lr)

    def step():
        loss = F.softmax_cross_entropy(model(x), t)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def torch_step(torch, kind: str) -> Callable[[], None]:
    """The PyTorch twin of :func:`pygrad_step`."""
    torch.manual_seed(0)
    model, shape, optimizer_class, lr = torch_model(torch, kind)
    x, t = torch.randn(*shape), torch.randint(0, 10, (shape[0],))
    optimizer = optimizer_class(model.parameters(), lr=lr)

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), t)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step
