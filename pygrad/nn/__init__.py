"""Neural networks: :class:`Module`, layers, losses, initialisers and optimizers (``nn.optim``).

>>> from pygrad import nn
>>> model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
"""

from pygrad.nn import init, optim  # noqa: F401
from pygrad.nn.layers import *  # noqa: F401,F403
from pygrad.nn.module import LoadReport, Module  # noqa: F401
