"""Checkpoint files: nested dicts of arrays saved as one pickle-free ``.npy`` record.

A checkpoint is a single ``.npy`` file holding a one-record structured array whose field
names are the dotted keys (``"fc1.W"``) and whose fields are the arrays themselves, so
``numpy.load(path, allow_pickle=False)`` reads it.  Writes are atomic.  Checkpoints written by
pygrad 0.1.0 (a pickled dict inside a ``.npy``) are read through an allow-list unpickler that
only rebuilds NumPy arrays, so loading never runs code from the file.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import pickle
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Union

import numpy as np

from pygrad.backends import to_host

try:
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # NumPy < 1.26 has no numpy._core
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric

__all__ = [
    "save_weights",
    "load_weights",
    "read_weights",
    "save_state",
    "load_state",
    "flatten_dict",
    "unflatten_dict",
]

PathLike = Union[str, os.PathLike]

# The header of a big model's record is long; it is parsed with ast.literal_eval, which is safe,
# so the limit NumPy applies by default to untrusted headers is lifted for our own reader.
_MAX_HEADER_SIZE = sys.maxsize

# Everything a pickled dict of NumPy arrays needs, under the module names NumPy 1.x and 2.x write.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy.core.numeric", "_frombuffer"): _numeric._frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _numeric._frombuffer,
}


# --- nested and dotted dicts -----------------------------------------------------------------
def flatten_dict(nested: Mapping, prefix: str = "") -> dict:
    """Return ``nested`` as a flat dict with dotted keys, in insertion order.

    Keys that already contain dots are kept as they are, so a dotted dict flattens to itself.

    Parameters
    ----------
    nested : Mapping
        A dict whose values are leaves (arrays, numbers) or further dicts.
    prefix : str
        Prepended, with a dot, to every key.

    Returns
    -------
    dict
        ``{"fc1.W": array, ...}``.

    Raises
    ------
    TypeError
        When a key is not a string.
    ValueError
        When a key is empty or two paths give the same dotted name.

    Examples
    --------
    >>> flatten_dict({"fc1": {"W": 1, "b": 2}, "scale": 3})
    {'fc1.W': 1, 'fc1.b': 2, 'scale': 3}
    """
    flat: dict = {}
    _flatten_into(flat, nested, prefix)
    return flat


def _flatten_into(flat: dict, nested: Mapping, prefix: str) -> None:
    for key, value in nested.items():
        if not isinstance(key, str):
            raise TypeError(
                f"flatten_dict: keys must be strings, got {key!r} ({type(key).__name__})"
                + (f" under {prefix!r}" if prefix else "")
            )
        if not key:
            raise ValueError("flatten_dict: empty key" + (f" under {prefix!r}" if prefix else ""))
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            _flatten_into(flat, value, name)
        elif name in flat:
            raise ValueError(f"flatten_dict: the name {name!r} occurs twice")
        else:
            flat[name] = value


def unflatten_dict(flat: Mapping) -> dict:
    """Return the nested dict that ``flat``'s dotted keys describe (the inverse of
    :func:`flatten_dict`).

    Parameters
    ----------
    flat : Mapping
        ``{"fc1.W": array, ...}``.

    Returns
    -------
    dict
        ``{"fc1": {"W": array}, ...}``, in the order the keys first appear.

    Raises
    ------
    ValueError
        When a name is both a leaf and the prefix of another name (``"a"`` and ``"a.b"``).

    Examples
    --------
    >>> unflatten_dict({"fc1.W": 1, "fc1.b": 2, "scale": 3})
    {'fc1': {'W': 1, 'b': 2}, 'scale': 3}
    """
    nested: dict = {}
    for name, value in flat.items():
        if not isinstance(name, str):
            raise TypeError(f"unflatten_dict: keys must be strings, got {name!r}")
        *parents, leaf = name.split(".")
        node = nested
        for depth, part in enumerate(parents):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                prefix = ".".join(parents[: depth + 1])
                raise ValueError(
                    f"unflatten_dict: {prefix!r} is both a value and a prefix of {name!r}"
                )
            node = child
        if leaf in node:
            raise ValueError(
                f"unflatten_dict: {name!r} is both a value and a prefix of other names"
            )
        node[leaf] = value
    return nested


# --- writing ---------------------------------------------------------------------------------
def save_weights(path: PathLike, weights: Mapping) -> Path:
    """Write a nested dict of arrays to one pickle-free ``.npy`` file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Where to write; ``".npy"`` is appended when missing and missing parent folders are
        created.
    weights : Mapping
        A nested (or dotted) dict of arrays on any device (or Variables, or numbers), such as
        :meth:`pygrad.nn.Module.weight_dict` returns.  Arrays must hold numbers or booleans.

    Returns
    -------
    pathlib.Path
        The path written.

    Notes
    -----
    The file holds a 0-d structured array with one field per dotted name, of the array's
    dtype and shape: ``numpy.load(path, allow_pickle=False)["fc1.W"]`` is the array.  For models
    with hundreds of parameters the header exceeds NumPy's default ``max_header_size``;
    :func:`load_weights` lifts that limit.  The data goes to a temporary file in the same
    folder, which then replaces ``path``, so an interrupted save leaves any old file intact.

    Examples
    --------
    >>> save_weights("ckpt/model", {"fc1": {"W": np.ones((2, 3), np.float32)}})
    PosixPath('ckpt/model.npy')
    """
    return _write_record(path, _host_arrays(weights, "save_weights"))


def save_state(path: PathLike, state: Mapping) -> Path:
    """Write a nested dict of arrays and plain numbers (optimizer state) to a ``.npy`` file.

    Parameters
    ----------
    path : str or os.PathLike
        As for :func:`save_weights` (``".npy"`` appended, parents created, atomic write).
    state : Mapping
        A nested dict whose leaves are arrays on any device or Python/NumPy numbers
        (ints, floats, bools), such as :meth:`pygrad.nn.optim.Optimizer.state_dict` returns.

    Returns
    -------
    pathlib.Path
        The path written.

    Notes
    -----
    Numbers are stored as 0-d fields; :func:`load_state` gives every 0-d field back as a
    Python number.
    """
    return _write_record(path, _host_arrays(state, "save_state"))


def _host_arrays(tree: Mapping, caller: str) -> dict:
    from pygrad.core import Variable

    if not isinstance(tree, Mapping):
        raise TypeError(f"{caller}: expected a dict of arrays, got {type(tree).__name__}")
    arrays = {}
    for name, value in flatten_dict(tree).items():
        if isinstance(value, Variable):
            value = value.data
        value = to_host(value)
        if not isinstance(value, (np.ndarray, np.generic, numbers.Number)):
            raise TypeError(
                f"{caller}: {name!r} is a {type(value).__name__}; "
                "only arrays, Variables and numbers can be saved"
            )
        array = np.asarray(value)
        if array.dtype.kind not in "biufc":
            raise TypeError(
                f"{caller}: {name!r} has dtype {array.dtype}; only numeric and boolean arrays "
                "can be saved"
            )
        arrays[name] = array
    return arrays


def _npy_path(path: PathLike) -> Path:
    path = Path(os.fspath(path))
    return path if path.name.endswith(".npy") else path.with_name(path.name + ".npy")


def _write_record(path: PathLike, arrays: dict) -> Path:
    path = _npy_path(path)
    dtype = np.dtype([(name, array.dtype, array.shape) for name, array in arrays.items()])
    record = np.zeros((), dtype=dtype)
    for name, array in arrays.items():
        record[name] = array
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(descriptor, "wb") as file:
            np.save(file, record, allow_pickle=False)
            file.flush()
            os.fsync(file.fileno())
        # mkstemp makes the file private; give it the mode a plain open() would have.
        os.chmod(temp_name, _file_mode(path))
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    return path


def _file_mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


# --- reading ---------------------------------------------------------------------------------
def load_weights(path: PathLike) -> dict:
    """Read a checkpoint written by :func:`save_weights` or by pygrad 0.1.0.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npy`` file (``".npy"`` is tried when ``path`` itself does not exist).

    Returns
    -------
    dict
        The nested dict of NumPy arrays.  A pygrad 0.1.0 checkpoint comes back as it was
        saved, including plain numbers such as the dropout rates 0.1.0 stored as parameters;
        callers skip those.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When the file is neither a pygrad checkpoint nor a pygrad 0.1.0 checkpoint.
    pickle.UnpicklingError
        When a 0.1.0-style file refers to anything but NumPy arrays, dicts and plain values;
        nothing from such a file is run.
    """
    return read_weights(path)[1]


def read_weights(path: PathLike) -> tuple:
    """Like :func:`load_weights`, also telling which format the file had.

    Returns
    -------
    tuple
        ``("record", weights)`` for a file written by :func:`save_weights`, or
        ``("legacy", weights)`` for a pygrad 0.1.0 checkpoint.
    """
    path = _existing_path(path)
    kind, content = _read(path)
    if kind == "record":
        return kind, unflatten_dict(
            {name: content[name].copy() for name in content.dtype.names}  # aligned, owned
        )
    return kind, content


def load_state(path: PathLike) -> dict:
    """Read what :func:`save_state` wrote.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npy`` file.

    Returns
    -------
    dict
        The nested dict: arrays for fields with at least one axis, Python numbers (int,
        float, bool, complex) for 0-d fields.

    Raises
    ------
    FileNotFoundError, ValueError
        As for :func:`load_weights`; an optimizer state file is never a pickle.
    """
    path = _existing_path(path)
    _, content = _read(path, allow_legacy=False)
    flat = {}
    for name in content.dtype.names:
        field = content[name]
        flat[name] = field.item() if field.ndim == 0 else field.copy()
    return unflatten_dict(flat)


def _existing_path(path: PathLike) -> Path:
    path = Path(os.fspath(path))
    if not path.exists() and not path.name.endswith(".npy"):
        with_suffix = _npy_path(path)
        if with_suffix.exists():
            return with_suffix
    return path


def _not_a_checkpoint(path: Path, reason: str) -> ValueError:
    return ValueError(f"{path} is not a pygrad checkpoint: {reason}")


def _read(path: Path, allow_legacy: bool = True) -> tuple:
    """Return ("record", 0-d structured array) or ("legacy", nested dict) for ``path``."""
    with open(path, "rb") as file:
        if file.read(len(np.lib.format.MAGIC_PREFIX)) != np.lib.format.MAGIC_PREFIX:
            raise _not_a_checkpoint(path, "it is not a .npy file")
        file.seek(0)
        try:
            version = np.lib.format.read_magic(file)
            # Version 3.0 differs from 2.0 only in allowing UTF-8 field names; the 2.0 reader
            # is enough to tell a record from a pickle.
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(file, max_header_size=_MAX_HEADER_SIZE)
        except ValueError as exc:
            raise _not_a_checkpoint(path, f"unreadable .npy header ({exc})") from exc
        if dtype.hasobject:
            if not allow_legacy:
                raise _not_a_checkpoint(path, "it holds a pickle, which a state file never does")
            return "legacy", _read_legacy(path, file, shape)
        if dtype.names is None or shape not in ((), (1,)):
            raise _not_a_checkpoint(
                path,
                f"expected one record of named arrays, found an array of shape {shape} "
                f"and dtype {dtype}",
            )
        file.seek(0)
        try:
            record = np.lib.format.read_array(
                file, allow_pickle=False, max_header_size=_MAX_HEADER_SIZE
            )
        except ValueError as exc:
            raise _not_a_checkpoint(path, f"truncated or corrupt data ({exc})") from exc
    return "record", record.reshape(())


class _RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a global outside the allow-list."""


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds NumPy arrays, dicts and plain values, and nothing else."""

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _RefusedGlobal(
                f"refused to load the global '{module}.{name}': a checkpoint may only hold "
                "NumPy arrays, dicts and plain values"
            ) from None


def _read_legacy(path: Path, file, shape: tuple) -> dict:
    try:
        array = _ArrayUnpickler(file).load()
    except _RefusedGlobal as exc:
        raise pickle.UnpicklingError(f"{path}: {exc}") from exc
    except Exception as exc:  # a damaged pickle fails in many ways
        raise _not_a_checkpoint(path, f"corrupt pickled data ({exc})") from exc
    if not (isinstance(array, np.ndarray) and array.shape == () == shape):
        raise _not_a_checkpoint(path, "the pickled content is not a single dict")
    weights = array.item()
    if not isinstance(weights, dict):
        raise _not_a_checkpoint(
            path, f"the pickled content is a {type(weights).__name__}, not a dict"
        )
    _check_legacy_tree(path, weights, "")
    return weights


def _check_legacy_tree(path: Path, tree: dict, prefix: str) -> None:
    for key, value in tree.items():
        if not isinstance(key, str):
            raise _not_a_checkpoint(
                path, f"key {key!r} under {prefix or 'the top'} is not a string"
            )
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            _check_legacy_tree(path, value, name)
        elif isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise _not_a_checkpoint(path, f"{name!r} is an array of Python objects")
        elif not (value is None or isinstance(value, (numbers.Number, np.bool_, str))):
            raise _not_a_checkpoint(
                path, f"{name!r} is a {type(value).__name__}, not an array or a plain value"
            )
