"""Layers, grouped by theme and re-exported as ``pygrad.nn.<Layer>``."""

from pygrad.nn.layers.basic import *  # noqa: F401,F403
from pygrad.nn.layers.conv import *  # noqa: F401,F403
from pygrad.nn.layers.loss import *  # noqa: F401,F403
from pygrad.nn.layers.normalization import *  # noqa: F401,F403
from pygrad.nn.layers.recurrent import *  # noqa: F401,F403
