"""Checkpoint files: nested dicts of arrays saved as pickle-free ``.npy`` records.

A checkpoint is a ``.npy`` file holding a one-record structured array whose field names are the
dotted keys (``"fc1.W"``) and whose fields are the arrays themselves, so
``numpy.load(path, allow_pickle=False)`` reads it; weights beyond what one record holds go to
shard files of the same kind, and the named file becomes their index.  Writes are atomic and
streamed.  Reading any file is bounded in time and memory.  Checkpoints written by pygrad 0.1.0
(a pickled dict inside a ``.npy``) are read through an allow-list unpickler that only rebuilds
NumPy arrays, so loading never runs code from the file.
"""

from __future__ import annotations

import ast
import contextlib
import math
import numbers
import os
import pickle
import re
import secrets
import tempfile
import time
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
    "module_weights",
    "flatten_dict",
    "unflatten_dict",
]

PathLike = Union[str, os.PathLike]


class _NdarrayType:
    """Stands for ``numpy.ndarray`` in a pickle: pickled arrays only pass it to
    ``_reconstruct``; a pickle that calls it (to allocate an array of any size) fails."""


def _reconstruct(subtype, shape, dtype):
    # NumPy pickles an array as an empty one (shape (0,)) whose state then brings the data, so
    # the data's size is bounded by the file; a larger shape here is refused.
    if subtype is not _NdarrayType or not isinstance(shape, tuple) or 0 not in shape:
        raise pickle.UnpicklingError("a pickled array that is not built the way NumPy pickles one")
    return _multiarray._reconstruct(np.ndarray, shape, dtype)


# Everything a pickled dict of NumPy arrays needs, under the module names NumPy 1.x and 2.x write.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"): _NdarrayType,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
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


# --- limits ----------------------------------------------------------------------------------
# NumPy keeps a structured dtype's item size in a C int, so one record holds at most 2 GiB;
# weights beyond that go to shards.  Tests lower it to exercise shards with small arrays.
RECORD_BYTES = 2**31 - 2**20
# Reading a header means parsing it with ast.literal_eval and building its dtype, about a second
# per MiB; capping it bounds the time any file can take before it is rejected.  Writers keep each
# record's header under it (a record holds about 20,000 fields).
MAX_HEADER_BYTES = 2**20
MAX_FIELDS = 20_000  # per record
MAX_LEAVES = 200_000  # per checkpoint, across shards or in a 0.1.0 file
MAX_DEPTH = 64  # nesting of dicts (parts of a dotted name)
MAX_SHARDS = 10_000
_WRITE_CHUNK = 2**28  # one write() call moves at most this many bytes (a read() at most 2 GiB)

# The index of a sharded checkpoint: one row per shard file.  ``weight`` is empty for a shard
# that is a record of named arrays, or names the one array a shard holds when that array alone
# is too big for a record.
_INDEX_FIELDS = ("shard", "weight")
_INDEX_HEADER_BYTES = 4096


def _write_array_header(file, header: dict) -> None:
    """Write a .npy header in the oldest format version that can hold it, as np.save does
    (without its warning that versions 2.0 and 3.0 need NumPy 1.9 and 1.17)."""
    try:
        from numpy.lib._format_impl import _write_array_header as write
    except ImportError:  # NumPy < 2.0
        from numpy.lib.format import _write_array_header as write
    for version in ((1, 0), (2, 0)):
        try:
            # The header is formatted completely before anything is written.
            return write(file, header, version)
        except (ValueError, UnicodeEncodeError):  # too long for 1.0; not latin-1 for 2.0
            pass
    return write(file, header, (3, 0))


# --- writing ---------------------------------------------------------------------------------
def save_weights(path: PathLike, weights: Mapping) -> Path:
    """Write a nested dict of arrays as pickle-free ``.npy`` files, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Where to write; ``".npy"`` is appended when missing and missing parent folders are
        created.  When ``path`` is a symbolic link, the file it points to is replaced and the
        link stays.
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
    dtype and shape: ``numpy.load(path, allow_pickle=False)["fc1.W"]`` is the array.  Weights
    beyond what one record holds (2 GiB, or about 20,000 names) go to shard files beside
    ``path`` (``model.shard-<id>-00001-of-00003.npy``, records of the same kind, or a plain
    array for one weight above 2 GiB), and ``path`` becomes their index: a 1-d array with the
    fields ``shard`` (a file name) and ``weight`` (the name a plain-array shard holds).  Every
    file is written to a temporary file that is then renamed; the index comes last, so an
    interrupted save leaves the old checkpoint whole, and the next save to ``path`` removes
    what an interrupted one left.  Arrays are streamed to the file one by one: the save needs
    no second copy of the weights in memory.

    Examples
    --------
    >>> save_weights("ckpt/model", {"fc1": {"W": np.ones((2, 3), np.float32)}})
    PosixPath('ckpt/model.npy')
    """
    return _write_checkpoint(path, _leaves(weights, "save_weights"))


def save_state(path: PathLike, state: Mapping) -> Path:
    """Write a nested dict of arrays and plain numbers (optimizer state) to a ``.npy`` file.

    Parameters
    ----------
    path : str or os.PathLike
        As for :func:`save_weights` (``".npy"`` appended, parents created, atomic write,
        shards when needed).
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
    return _write_checkpoint(path, _leaves(state, "save_state"))


class _Leaf:
    """One array to write: its name, dtype and shape, and the array (maybe on a device)."""

    __slots__ = ("name", "dtype", "shape", "array")

    def __init__(self, name, dtype, shape, array):
        self.name, self.dtype, self.shape, self.array = name, dtype, tuple(shape), array

    @property
    def nbytes(self) -> int:
        return self.dtype.itemsize * math.prod(self.shape)

    def host(self) -> np.ndarray:
        array = np.asarray(to_host(self.array))
        if array.dtype != self.dtype or array.shape != self.shape:
            raise ValueError(f"{self.name!r} changed while it was being saved")
        # A non-contiguous array is copied here, one array at a time.
        return np.ascontiguousarray(array).reshape(-1)


def _leaves(tree: Mapping, caller: str) -> list:
    from pygrad.core import Variable

    if not isinstance(tree, Mapping):
        raise TypeError(f"{caller}: expected a dict of arrays, got {type(tree).__name__}")
    leaves = []
    for name, value in flatten_dict(tree).items():
        if isinstance(value, Variable):
            value = value.data
        device_array = type(value) is not np.ndarray and getattr(value, "xp", None) is not None
        if device_array and hasattr(value, "dtype") and hasattr(value, "shape"):
            # Copied to the host only when its turn to be written comes.
            dtype = np.dtype(value.dtype)
        else:
            value = to_host(value)
            if not isinstance(value, (np.ndarray, np.generic, numbers.Number)):
                raise TypeError(
                    f"{caller}: {name!r} is a {type(value).__name__}; "
                    "only arrays, Variables and numbers can be saved"
                )
            value = np.asarray(value)
            dtype = value.dtype
        if dtype.kind not in "biufc":
            raise TypeError(
                f"{caller}: {name!r} has dtype {dtype}; only numeric and boolean arrays "
                "can be saved"
            )
        leaves.append(_Leaf(name, dtype, value.shape, value))
    return leaves


def _npy_path(path: PathLike) -> Path:
    path = Path(os.fspath(path))
    return path if path.name.endswith(".npy") else path.with_name(path.name + ".npy")


def _record_header(leaves: list) -> dict:
    dtype = np.dtype([(leaf.name, leaf.dtype, leaf.shape) for leaf in leaves])
    return {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": ()}


def _array_header(leaf: _Leaf) -> dict:
    descr = np.lib.format.dtype_to_descr(leaf.dtype)
    return {"descr": descr, "fortran_order": False, "shape": leaf.shape}


def _stream(leaves: list, header: dict):
    """Return a writer of one .npy file: the header, then each array's bytes in turn."""

    def write(file) -> None:
        _write_array_header(file, header)
        for leaf in leaves:
            data = leaf.host().view(np.uint8)
            for start in range(0, data.size, _WRITE_CHUNK):
                file.write(data[start : start + _WRITE_CHUNK])

    return write


def _plan(leaves: list) -> list:
    """Split ``leaves`` into records that NumPy can hold, in order; a list of lists, or a
    single leaf (not in a list) for an array too big for any record."""
    groups, current, size, header = [], [], 0, 0
    budget = MAX_HEADER_BYTES - 256
    for leaf in leaves:
        nbytes = leaf.nbytes
        entry = len(repr((leaf.name, np.lib.format.dtype_to_descr(leaf.dtype), leaf.shape))) + 2
        if nbytes > RECORD_BYTES:
            groups.extend([current, leaf] if current else [leaf])
            current, size, header = [], 0, 0
            continue
        if current and (
            size + nbytes > RECORD_BYTES or header + entry > budget or len(current) >= MAX_FIELDS
        ):
            groups.append(current)
            current, size, header = [], 0, 0
        current.append(leaf)
        size += nbytes
        header += entry
    if current or not groups:
        groups.append(current)
    return groups


def _write_checkpoint(path: PathLike, leaves: list) -> Path:
    started = time.time()
    path = _npy_path(path)
    # np.save and torch.save write through a link; so do we, atomically, beside its target.
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    target.parent.mkdir(parents=True, exist_ok=True)
    old_shards = _shards_of(target)
    _remove_leftovers(target, started, keep=old_shards)
    groups = _plan(leaves)
    if len(groups) == 1 and isinstance(groups[0], list):
        _atomic_write(target, _stream(groups[0], _record_header(groups[0])))
        new_shards = set()
    else:
        new_shards = _write_shards(target, groups)
    for name in old_shards - new_shards:
        with contextlib.suppress(OSError):
            os.unlink(target.parent / name)
    return path


def _write_shards(target: Path, groups: list) -> set:
    token = secrets.token_hex(6)
    stem = target.name[: -len(".npy")]
    rows, written = [], []
    try:
        for number, group in enumerate(groups, 1):
            name = f"{stem}.shard-{token}-{number:05d}-of-{len(groups):05d}.npy"
            if isinstance(group, list):
                _atomic_write(target.parent / name, _stream(group, _record_header(group)))
                rows.append((name, ""))
            else:
                _atomic_write(target.parent / name, _stream([group], _array_header(group)))
                rows.append((name, group.name))
            written.append(name)
        width = max(len(text) for row in rows for text in row) or 1
        index = np.array(rows, dtype=[(field, f"U{width}") for field in _INDEX_FIELDS])
        _atomic_write(target, lambda file: np.save(file, index, allow_pickle=False))
    except BaseException:
        for name in written:
            with contextlib.suppress(OSError):
                os.unlink(target.parent / name)
        raise
    return set(written)


def _atomic_write(target: Path, write) -> None:
    descriptor, temp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    try:
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        # mkstemp makes the file private; give it the mode a plain open() would have.
        os.chmod(temp_name, _file_mode(target))
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise


def _file_mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _leftover_pattern(target: Path) -> re.Pattern:
    """Temporary files of saves to ``target`` and shards of its sharded saves."""
    name, stem = re.escape(target.name), re.escape(target.name[: -len(".npy")])
    temp = r"\.[a-z0-9_]{8}\.tmp"  # what tempfile.mkstemp adds
    shard = rf"{stem}\.shard-[0-9a-f]{{12}}-\d{{5}}-of-\d{{5}}\.npy"
    return re.compile(rf"\.{name}{temp}|\.{shard}{temp}|{shard}")


def _remove_leftovers(target: Path, started: float, keep: set) -> None:
    """Remove what an interrupted save to ``target`` left: its temporary files and shards no
    index refers to, if they are older than this save (a concurrent save keeps its own)."""
    pattern = _leftover_pattern(target)
    try:
        names = os.listdir(target.parent)
    except OSError:
        return
    for name in names:
        if name in keep or not pattern.fullmatch(name):
            continue
        leftover = target.parent / name
        with contextlib.suppress(OSError):
            if leftover.is_file() and not leftover.is_symlink():
                if leftover.stat().st_mtime < started:
                    os.unlink(leftover)


def _shards_of(target: Path) -> set:
    """The shard files the index at ``target`` refers to (empty when it is no index)."""
    try:
        with open(target, "rb") as file:
            # An index's header is short; a long one is a record, not worth parsing here.
            shape, dtype = _read_header(target, file, max_bytes=_INDEX_HEADER_BYTES)
            if not _is_index(shape, dtype):
                return set()
            return {row[0] for row in _read_index(target, file, shape, dtype)}
    except (OSError, ValueError):
        return set()


# --- reading ---------------------------------------------------------------------------------
def load_weights(path: PathLike, mmap: bool = False) -> dict:
    """Read a checkpoint written by :func:`save_weights` or by pygrad 0.1.0.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npy`` file (``".npy"`` is tried when ``path`` itself does not exist).
    mmap : bool
        When True, the arrays of a pickle-free checkpoint are read-only views of the files
        (memory-mapped), read from disk when used; otherwise they are owned, writable copies.

    Returns
    -------
    dict
        The nested dict of NumPy arrays.  A pygrad 0.1.0 checkpoint comes back as it was
        saved, including plain numbers such as the dropout rates 0.1.0 stored as parameters;
        callers skip those.

    Raises
    ------
    FileNotFoundError
        When the file (or a shard it names) does not exist.
    ValueError
        When the file is neither a pygrad checkpoint nor a pygrad 0.1.0 checkpoint, or is
        beyond the limits any checkpoint keeps (a header over 1 MiB, more than 20,000 names
        in a record or 200,000 in all, dicts nested more than 64 deep, a dict that contains
        itself or appears twice): loading any file takes time and memory bounded by its size.
    pickle.UnpicklingError
        When a 0.1.0-style file refers to anything but NumPy arrays, dicts and plain values;
        nothing from such a file is run.
    """
    return read_weights(path, mmap=mmap)[1]


def read_weights(path: PathLike, mmap: bool = False) -> tuple:
    """Like :func:`load_weights`, also telling which format the file had.

    Returns
    -------
    tuple
        ``("record", weights)`` for a file written by :func:`save_weights` (sharded or not),
        or ``("legacy", weights)`` for a pygrad 0.1.0 checkpoint.
    """
    path = _existing_path(path)
    kind, content = _read(path, mmap=mmap)
    if kind == "record":
        return kind, unflatten_dict(content)
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
    _, flat = _read(path, allow_legacy=False)
    return unflatten_dict(
        {name: field.item() if field.ndim == 0 else field for name, field in flat.items()}
    )


def module_weights(path: PathLike, targets: Mapping, mmap: bool = False) -> dict:
    """Read a checkpoint for :meth:`pygrad.nn.Module.load`: the dotted weights to load into
    ``targets`` (dotted name to current array).

    The plain numbers (dropout rates) of a pygrad 0.1.0 file are dropped and its floating-point
    weights cast to the target's dtype; any other entry is kept, so that an unexpected one is
    reported.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint, as for :func:`load_weights`.
    targets : Mapping
        The model's dotted names and current arrays (anything with ``shape`` and ``dtype``).
    mmap : bool
        Memory-map the files of a pickle-free checkpoint instead of reading them.

    Returns
    -------
    dict
        Dotted names to NumPy arrays, for :meth:`pygrad.nn.Module.load_weight_dict`.

    Raises
    ------
    ValueError
        When a 0.1.0 file holds something other than an array or a number where a weight
        belongs, besides the errors of :func:`load_weights`.
    """
    kind, saved = read_weights(path, mmap=mmap)
    flat = flatten_dict(saved)
    if kind != "legacy":
        return flat
    weights = {}
    for name, value in flat.items():
        target = targets.get(name)
        if target is None:
            if isinstance(value, np.ndarray) and value.ndim > 0:
                weights[name] = value  # reported as unexpected
            continue
        if not isinstance(value, (np.ndarray, np.generic, numbers.Number)) or isinstance(
            value, (str, bytes)
        ):
            raise ValueError(
                f"{Path(os.fspath(path))}: {name!r} holds {value!r} ({type(value).__name__}) "
                f"where the model has an array of shape {target.shape} and dtype {target.dtype}"
            )
        value = np.asarray(value)
        if value.dtype.kind == np.dtype(target.dtype).kind == "f":
            value = value.astype(target.dtype)
        weights[name] = value
    return weights


def _existing_path(path: PathLike) -> Path:
    path = Path(os.fspath(path))
    if not path.exists() and not path.name.endswith(".npy"):
        with_suffix = _npy_path(path)
        if with_suffix.exists():
            return with_suffix
    return path


def _not_a_checkpoint(path: Path, reason: str) -> ValueError:
    return ValueError(f"{path} is not a pygrad checkpoint: {reason}")


def _read_header(path: Path, file, max_bytes: int | None = None) -> tuple:
    """Read a .npy header of at most MAX_HEADER_BYTES; return (shape, dtype).

    The header is parsed here rather than by NumPy, whose reader retries a header it cannot
    parse with a slow tokenizer (for headers Python 2 wrote), which a crafted header turns into
    seconds per file."""
    if file.read(len(np.lib.format.MAGIC_PREFIX)) != np.lib.format.MAGIC_PREFIX:
        raise _not_a_checkpoint(path, "it is not a .npy file")
    file.seek(0)
    try:
        version = np.lib.format.read_magic(file)
    except ValueError as exc:
        raise _not_a_checkpoint(path, f"unreadable .npy header ({exc})") from exc
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise _not_a_checkpoint(path, f"unknown .npy format version {version}")
    # The header's length comes first: a long one is refused before it is read or parsed.
    width = 2 if version == (1, 0) else 4
    length = int.from_bytes(file.read(width), "little")
    if length > (MAX_HEADER_BYTES if max_bytes is None else max_bytes):
        raise _not_a_checkpoint(
            path,
            f"its header has {length} bytes, more than the {MAX_HEADER_BYTES} a checkpoint "
            "record ever has",
        )
    header = file.read(length)
    try:
        if len(header) != length:
            raise ValueError("the file ends inside it")
        text = header.decode("utf-8" if version == (3, 0) else "latin1")
        content = ast.literal_eval(text)
        if not isinstance(content, dict) or set(content) != {"descr", "fortran_order", "shape"}:
            raise ValueError("it is not a dict of descr, fortran_order and shape")
        shape, fortran_order = content["shape"], content["fortran_order"]
        if not (
            isinstance(shape, tuple)
            and all(type(size) is int and size >= 0 for size in shape)
            and isinstance(fortran_order, bool)
        ):
            raise ValueError(f"shape {shape!r}, fortran_order {fortran_order!r}")
        dtype = np.lib.format.descr_to_dtype(content["descr"])
    except (ValueError, SyntaxError, TypeError, OverflowError, MemoryError, RecursionError) as exc:
        reason = str(exc)[:200] or type(exc).__name__
        raise _not_a_checkpoint(path, f"unreadable .npy header ({reason})") from exc
    if fortran_order and len(shape) > 1:
        raise _not_a_checkpoint(path, "its array is in Fortran order, which pygrad never writes")
    return shape, dtype


def _is_index(shape: tuple, dtype: np.dtype) -> bool:
    return len(shape) == 1 and dtype.names == _INDEX_FIELDS


def _read(path: Path, allow_legacy: bool = True, mmap: bool = False) -> tuple:
    """Return ("record", flat dict of arrays) or ("legacy", nested dict) for ``path``."""
    with open(path, "rb") as file:
        shape, dtype = _read_header(path, file)
        if dtype.hasobject:
            if not allow_legacy:
                raise _not_a_checkpoint(path, "it holds a pickle, which a state file never does")
            return "legacy", _read_legacy(path, file, shape)
        if _is_index(shape, dtype):
            rows = _read_index(path, file, shape, dtype)
        else:
            return "record", _read_record(path, file, shape, dtype, mmap)
    # Shards sit beside the index's real file (the index may be reached through a link).
    folder = Path(os.path.realpath(path)).parent
    flat: dict = {}
    for shard_name, weight in rows:
        shard = folder / shard_name
        with open(shard, "rb") as file:
            shard_shape, shard_dtype = _read_header(shard, file)
            if weight:
                arrays = {weight: _read_array(shard, file, shard_shape, shard_dtype, mmap)}
            else:
                arrays = _read_record(shard, file, shard_shape, shard_dtype, mmap)
        for name, array in arrays.items():
            if name in flat:
                raise _not_a_checkpoint(path, f"{name!r} is in two of its shards")
            flat[name] = array
        if len(flat) > MAX_LEAVES:
            raise _not_a_checkpoint(path, f"its shards hold more than {MAX_LEAVES} arrays")
    return "record", flat


def _read_index(path: Path, file, shape: tuple, dtype: np.dtype) -> list:
    if not 1 <= shape[0] <= MAX_SHARDS or dtype.itemsize > 8 * 4096:
        raise _not_a_checkpoint(path, f"an index of {shape[0]} shards of dtype {dtype}")
    if any(dtype[field].kind != "U" for field in _INDEX_FIELDS):
        raise _not_a_checkpoint(path, f"an index of dtype {dtype}")
    count = shape[0] * dtype.itemsize
    data = file.read(count)
    if len(data) != count:
        raise _not_a_checkpoint(path, "its index is truncated")
    rows = [(str(shard), str(weight)) for shard, weight in np.frombuffer(data, dtype).tolist()]
    shards = [shard for shard, _ in rows]
    for shard in shards:
        if os.path.basename(shard) != shard or shard.startswith(".") or not shard.endswith(".npy"):
            raise _not_a_checkpoint(
                path, f"its index names the shard {shard!r}, not a file beside it"
            )
    if len(set(shards)) != len(shards):
        raise _not_a_checkpoint(path, "its index names a shard twice")
    return rows


def _check_name(path: Path, name: str) -> None:
    if name.count(".") >= MAX_DEPTH:
        raise _not_a_checkpoint(path, f"{name[:80]!r} is nested more than {MAX_DEPTH} deep")


def _data_start(path: Path, file, nbytes: int) -> int:
    start = file.tell()
    size = os.fstat(file.fileno()).st_size
    if size - start < nbytes:
        raise _not_a_checkpoint(
            path, f"truncated or corrupt data ({nbytes} bytes expected, {size - start} found)"
        )
    return start


def _read_record(path: Path, file, shape: tuple, dtype: np.dtype, mmap: bool) -> dict:
    if dtype.names is None or shape not in ((), (1,)):
        raise _not_a_checkpoint(
            path,
            f"expected one record of named arrays, found an array of shape {shape} "
            f"and dtype {dtype}",
        )
    if len(dtype.names) > MAX_FIELDS:
        raise _not_a_checkpoint(path, f"its record has more than {MAX_FIELDS} fields")
    start = _data_start(path, file, dtype.itemsize)
    mapped = _map(path, start, dtype.itemsize) if mmap else None
    arrays = {}
    for name in dtype.names:
        _check_name(path, name)
        field, offset = dtype.fields[name][:2]
        arrays[name] = _field(path, file, name, field.base, field.shape, start + offset, mapped)
    return arrays


def _read_array(path: Path, file, shape: tuple, dtype: np.dtype, mmap: bool) -> np.ndarray:
    if dtype.names is not None or dtype.subdtype is not None:
        raise _not_a_checkpoint(path, f"a shard of dtype {dtype}, not a plain array")
    nbytes = dtype.itemsize * math.prod(shape)
    start = _data_start(path, file, nbytes)
    mapped = _map(path, start, nbytes) if mmap else None
    return _field(path, file, path.name, dtype, shape, start, mapped)


def _map(path: Path, start: int, nbytes: int):
    if nbytes == 0:
        return None
    return np.memmap(path, dtype=np.uint8, mode="r", offset=start, shape=(nbytes,)), start


def _field(path, file, name, dtype, shape, offset, mapped) -> np.ndarray:
    """One array of a record, read into its own aligned array or viewed in the mapped file."""
    if dtype.kind not in "biufc":
        raise _not_a_checkpoint(path, f"{name!r} has dtype {dtype}, not numbers")
    if mapped is not None:
        memory, start = mapped
        return np.ndarray(shape, dtype, buffer=memory, offset=offset - start)
    array = np.empty(shape, dtype)
    view = memoryview(array.reshape(-1).view(np.uint8))
    file.seek(offset)
    done = 0
    while done < len(view):
        count = file.readinto(view[done : done + _WRITE_CHUNK])
        if not count:
            raise _not_a_checkpoint(path, f"truncated data in {name!r}")
        done += count
    return array


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
    except RecursionError as exc:
        raise _not_a_checkpoint(path, "its pickle is nested too deeply") from exc
    except Exception as exc:  # a damaged pickle fails in many ways
        raise _not_a_checkpoint(path, f"corrupt pickled data ({exc})") from exc
    if not (isinstance(array, np.ndarray) and array.shape == () == shape):
        raise _not_a_checkpoint(path, "the pickled content is not a single dict")
    weights = array.item()
    if not isinstance(weights, dict):
        raise _not_a_checkpoint(
            path, f"the pickled content is a {type(weights).__name__}, not a dict"
        )
    _check_legacy_tree(path, weights)
    return weights


def _check_legacy_tree(path: Path, tree: dict) -> None:
    """Check a 0.1.0 tree without recursion: string keys, array or plain leaves, at most
    MAX_DEPTH deep and MAX_LEAVES leaves, and no dict twice (a pickle can share one dict
    between many keys, which would make walking it take exponential time, or make it contain
    itself)."""
    seen = {id(tree)}
    leaves = 0
    stack = [(tree, "", 1)]
    while stack:
        node, prefix, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _not_a_checkpoint(path, f"its dicts are nested more than {MAX_DEPTH} deep")
        for key, value in node.items():
            if not isinstance(key, str):
                raise _not_a_checkpoint(
                    path, f"key {key!r} under {prefix or 'the top'} is not a string"
                )
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                if id(value) in seen:
                    raise _not_a_checkpoint(
                        path,
                        f"the dict at {name[:200]!r} also appears elsewhere in the file "
                        "(shared or cyclic nesting)",
                    )
                seen.add(id(value))
                stack.append((value, name, depth + 1))
                continue
            leaves += 1
            if leaves > MAX_LEAVES:
                raise _not_a_checkpoint(path, f"it holds more than {MAX_LEAVES} values")
            if isinstance(value, np.ndarray):
                if value.dtype.hasobject:
                    raise _not_a_checkpoint(path, f"{name!r} is an array of Python objects")
            elif not (value is None or isinstance(value, (numbers.Number, np.bool_, str))):
                raise _not_a_checkpoint(
                    path, f"{name!r} is a {type(value).__name__}, not an array or a plain value"
                )
