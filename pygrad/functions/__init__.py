"""The function library: every differentiable operation, imported as ``F``.

>>> from pygrad import functions as F
>>> y = F.tanh(x)

Each function is a :class:`pygrad.Function` subclass plus one lowercase wrapper, written once
for every device.  Modules group them by theme; everything is re-exported here.
"""

from pygrad import core as _core
from pygrad.functions.activation import *  # noqa: F401,F403
from pygrad.functions.arithmetic import *  # noqa: F401,F403
from pygrad.functions.elementwise import *  # noqa: F401,F403
from pygrad.functions.loss import *  # noqa: F401,F403
from pygrad.functions.normalization import *  # noqa: F401,F403
from pygrad.functions.products import *  # noqa: F401,F403
from pygrad.functions.reduction import *  # noqa: F401,F403
from pygrad.functions.shape import *  # noqa: F401,F403
from pygrad.functions.vision import *  # noqa: F401,F403

# Operators and methods of Variable dispatch through this package.
_core._F = __import__("sys").modules[__name__]
