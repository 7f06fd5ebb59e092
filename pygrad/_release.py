"""When the graph may drop an intermediate array that no backward pass will read.

Training keeps every intermediate Variable of the forward pass alive until backward, yet many
of their arrays are never read again: the input of a ReLU (which keeps its output), the input
of an addition.  Such an array is *released*: the Variable keeps its shape and dtype, and its
``data`` becomes a :class:`ReleasedArray`, which fails loudly when anything reads its values.

An array is released only when all of these hold, so that no code outside the graph can ever
observe it:

1. its creator declared that its backward does not read its outputs (``needs_outputs``), and
   the function that consumed it declared the same for its inputs (``needs_inputs``);
2. the consuming function's ``inputs`` are the only strong references left.  ``sys.getrefcount``
   is compared with the count of an object held by nothing but a sequence being iterated,
   measured once at import with the same code shape, so the comparison is exact on whichever
   CPython runs it (3.9 to 3.13 count a loop variable and the call argument alike);
3. it has no weak references other than the graph's own :class:`OutputRef`: a user's
   ``weakref.ref``, ``WeakValueDictionary`` or ``weakref.proxy`` keeps it whole;
4. it is large enough (64 KiB) for the release to pay for itself.

A released array that is read anyway (through ``y.creator.inputs``, say) raises
:class:`ReleasedDataError`, which says how to keep it.
"""

from __future__ import annotations

import weakref
from sys import getrefcount

from pygrad.backends import device_of

__all__ = ["OutputRef", "ReleasedArray", "ReleasedDataError", "release_unneeded_inputs"]

# Arrays smaller than this are not worth releasing: a release costs a few microseconds.
RELEASE_MIN_BYTES = 1 << 16

_getweakrefcount = weakref.getweakrefcount


class OutputRef(weakref.ref):
    """The weak reference a Function keeps to each of its outputs (and pygrad's other graph
    bookkeeping to the Variables it records).

    It is a type of its own because CPython hands every caller of ``weakref.ref(x)`` (with no
    callback) one shared reference object: with plain references, the graph's could not be
    told apart from a user's.  References of this type never read the array they lead to.
    """

    __slots__ = ()


class ReleasedDataError(RuntimeError):
    """Raised when the data of an intermediate Variable is read after the graph released it."""


class ReleasedArray:
    """What ``Variable.data`` holds once the graph released an intermediate array.

    It keeps what backward needs without the values (``shape``, ``dtype``, ``ndim``, ``size``,
    ``nbytes`` and the device), and raises :class:`ReleasedDataError` on anything else: NumPy
    calls, arithmetic, indexing, conversion, copies to the host.
    """

    __slots__ = ("shape", "dtype", "device_name")

    def __init__(self, array):
        self.shape = array.shape
        self.dtype = array.dtype
        device = device_of(array)
        # device_of() reads device_name; the CPU's arrays have none.
        self.device_name = None if device == "cpu" else device

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        size = 1
        for n in self.shape:
            size *= n
        return size

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    def _fail(self, *args, **kwargs):
        raise ReleasedDataError(
            f"the data of this intermediate Variable (shape {self.shape}, dtype {self.dtype}) "
            "was released by the graph, since no backward pass reads it and nothing outside "
            "the graph referenced it. To read it later, keep a (strong or weak) reference to "
            "the Variable from its creation on; backward(retain_grad=True) also keeps the "
            "arrays a backward pass would release"
        )

    def __getattr__(self, name):
        self._fail()

    __array__ = __array_ufunc__ = __array_function__ = __getitem__ = __setitem__ = _fail
    __iter__ = __len__ = __bool__ = __float__ = __int__ = __complex__ = __index__ = _fail
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _fail
    __truediv__ = __rtruediv__ = __pow__ = __rpow__ = __matmul__ = __rmatmul__ = _fail
    __neg__ = __abs__ = __lt__ = __le__ = __gt__ = __ge__ = _fail

    def __repr__(self) -> str:
        return f"<released array: shape {self.shape}, dtype {self.dtype}>"


def _references_while_iterating(sequence) -> int:
    for item in sequence:
        return getrefcount(item)


# What getrefcount reports for an object held only by the sequence being iterated, measured
# with the same code shape as the check below.
_ONLY_IN_SEQUENCE = _references_while_iterating([object()])


def _weakly_referenced_by_others(x) -> bool:
    count = _getweakrefcount(x)
    if count == 0:
        return False
    return any(type(ref) is not OutputRef for ref in weakref.getweakrefs(x))


def release_unneeded_inputs(f) -> None:
    """Release the data of ``f``'s intermediate inputs that no backward pass can read.

    Called once ``f``'s output has been passed on to the next function (when ``f`` does not
    read its inputs in backward), and again after ``f`` has run backward.  See the module's
    docstring for the rules.
    """
    for x in f.inputs:
        creator = x.creator
        if (
            creator is not None
            and not creator.needs_outputs
            and type(x.data) is not ReleasedArray
            and x.data.nbytes >= RELEASE_MIN_BYTES
            and getrefcount(x) <= _ONLY_IN_SEQUENCE
            and not _weakly_referenced_by_others(x)
        ):
            x.data = ReleasedArray(x.data)
