"""pygrad: a define-by-run deep-learning framework with NumPy and OpenCL backends.

>>> from pygrad import Variable
>>> x = Variable(3); y = x * x; y.backward(); x.grad
Variable(6)
"""

from pygrad import functions  # noqa: F401  (binds the operators of Variable)
from pygrad._config import Config, no_grad, test_mode, using_config
from pygrad.backends import DeviceError, get_array_module
from pygrad.core import (
    Function,
    Parameter,
    Variable,
    as_array,
    as_variable,
    ones,
    randn,
    uniform,
    zeros,
)

__version__ = "0.2.0"

__all__ = [
    "Variable",
    "Parameter",
    "Function",
    "Config",
    "DeviceError",
    "no_grad",
    "test_mode",
    "using_config",
    "get_array_module",
    "as_array",
    "as_variable",
    "zeros",
    "ones",
    "randn",
    "uniform",
]
