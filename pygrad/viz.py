"""Pictures of graphs: the computational graph behind a Variable and the layers of a model, as
DOT source and rendered by Graphviz's ``dot`` program.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

from pygrad.core import Function, Parameter, Variable
from pygrad.utils import topological_order

__all__ = [
    "get_dot_graph",
    "plot_dot_graph",
    "dot_quote",
    "dot_node",
    "dot_edge",
    "dot_digraph",
    "render_dot",
    "RenderedGraph",
    "get_model_dot_graph",
    "plot_model",
]

RENDER_FORMATS = ("png", "svg", "pdf")

INSTALL_GRAPHVIZ = (
    "Graphviz's `dot` program was not found on the PATH; it is needed to draw graphs. "
    "Install Graphviz with one of: `apt-get install graphviz` (Debian/Ubuntu), "
    "`brew install graphviz` (macOS), `conda install graphviz` (conda), "
    "or the installer from https://graphviz.org/download/ (Windows), then try again. "
    "get_dot_graph() gives the DOT source without Graphviz."
)

_VARIABLE_STYLE = {"shape": "ellipse", "style": "filled", "fillcolor": "orange"}
_PARAMETER_STYLE = {"shape": "ellipse", "style": "filled", "fillcolor": "gold"}
_FUNCTION_STYLE = {"shape": "box", "style": "filled", "fillcolor": "lightblue"}


# =============================================================================================
# DOT writing
# =============================================================================================
# Characters that XML 1.0 (and so an SVG) may not hold, or that `dot` stops at (NUL): the C0
# controls but tab and the line breaks, DEL, the C1 controls, lone surrogates (which cannot even
# be encoded as UTF-8) and the two non-characters U+FFFE and U+FFFF.  A C0 control or DEL is
# drawn as its Unicode control picture (U+2400 + code: "\x1b" shows as "\u241b"), anything
# else as the replacement character U+FFFD.
_UNDRAWABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# `dot` refuses strings past 16,384 bytes; a label far shorter than that is already unreadable.
MAX_QUOTED_CHARS = 1000


def _drawable(match) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)
    return "\u2421" if code == 0x7F else "\ufffd"


def dot_quote(text) -> str:
    """Return ``text`` as a double-quoted DOT string.

    Backslashes and double quotes are escaped, and line breaks become DOT's ``\\n`` (a centred
    line break in a label), so any text is safe as an id or a label.  Characters that a
    rendered SVG could not hold as XML, or that stop ``dot`` (control characters, NUL, lone
    surrogates), are replaced by visible stand-ins, and text over ``MAX_QUOTED_CHARS``
    characters is cut there and marked with its full length and a hash of it (so that two
    long ids that share a beginning stay apart).

    Parameters
    ----------
    text : object
        Converted with ``str``.

    Returns
    -------
    str
        The quoted string, quotes included.

    Examples
    --------
    >>> dot_quote('say "hi"\\nbye')
    '"say \\\\"hi\\\\"\\\\nbye"'
    >>> dot_quote("tab\\tesc\\x1b")
    '"tab\\tesc\u241b"'
    """
    text = str(text)
    if len(text) > MAX_QUOTED_CHARS:
        digest = hashlib.sha1(text.encode("utf-8", "surrogatepass"), usedforsecurity=False)
        digest = digest.hexdigest()[:8]
        text = f"{text[:MAX_QUOTED_CHARS]}... ({len(text)} characters, {digest})"
    text = _UNDRAWABLE.sub(_drawable, text)
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return f'"{text}"'


def _attributes(attributes: dict) -> str:
    if not attributes:
        return ""
    pairs = ", ".join(f"{key}={dot_quote(value)}" for key, value in attributes.items())
    return f" [{pairs}]"


def dot_node(node_id: str, label: str, **attributes) -> str:
    """Return one DOT node statement, ``"id" [label="...", ...]``, with every value quoted.

    Parameters
    ----------
    node_id : str
        The node's id (quoted here, so any text works).
    label : str
        The text drawn in the node; line breaks are kept.
    **attributes
        Further DOT attributes such as ``shape="box"`` or ``fillcolor="orange"``.

    Returns
    -------
    str
    """
    return f"{dot_quote(node_id)}{_attributes({'label': label, **attributes})}"


def dot_edge(tail: str, head: str, **attributes) -> str:
    """Return one DOT edge statement, ``"tail" -> "head"``, with optional attributes.

    Parameters
    ----------
    tail, head : str
        Ids of the nodes the edge leaves and enters.
    **attributes
        DOT edge attributes such as ``label="(2, 3)"``.

    Returns
    -------
    str
    """
    return f"{dot_quote(tail)} -> {dot_quote(head)}{_attributes(attributes)}"


def dot_digraph(statements, name: str = "g", **graph_attributes) -> str:
    """Return the DOT source of a directed graph made of ``statements``.

    Parameters
    ----------
    statements : iterable of str
        Node and edge statements, as made by :func:`dot_node` and :func:`dot_edge`.
    name : str
        The graph's name.
    **graph_attributes
        Graph attributes such as ``rankdir="LR"``.

    Returns
    -------
    str
        DOT source ending with a newline.
    """
    lines = [f"digraph {dot_quote(name)} {{"]
    lines += [f"  {key}={dot_quote(value)};" for key, value in graph_attributes.items()]
    lines += [f"  {statement};" for statement in statements]
    lines.append("}")
    return "\n".join(lines) + "\n"


# =============================================================================================
# rendering
# =============================================================================================
class RenderedGraph(os.PathLike):
    """The file written by :func:`render_dot`; Jupyter shows it inline.

    It is a path-like object (``open(graph)``, ``os.fspath(graph)`` work), and offers
    ``_repr_png_``, ``_repr_svg_`` and ``_repr_pdf_`` for the format it was written in, so
    evaluating it in a notebook cell displays the picture without needing IPython here.

    Attributes
    ----------
    path : pathlib.Path
        Where the picture was written.
    format : str
        ``"png"``, ``"svg"`` or ``"pdf"``.
    """

    def __init__(self, path, format: str):
        self.path = Path(path)
        self.format = format

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"RenderedGraph({str(self.path)!r}, format={self.format!r})"

    def _read(self, format: str):
        if self.format != format:
            return None
        return self.path.read_bytes()

    def _repr_png_(self):
        return self._read("png")

    def _repr_svg_(self):
        data = self._read("svg")
        return None if data is None else data.decode("utf-8")

    def _repr_pdf_(self):
        return self._read("pdf")


def _format_of(path: Path) -> str:
    format = path.suffix.lower().lstrip(".")
    if format not in RENDER_FORMATS:
        raise ValueError(
            f"render_dot: cannot tell the picture format from {str(path)!r}; "
            f"give a file name ending in .png, .svg or .pdf (got {path.suffix or 'no extension'!r})"
        )
    return format


def render_dot(source: str, to_file="graph.png") -> RenderedGraph:
    """Render DOT source to a picture with Graphviz's ``dot`` program.

    Parameters
    ----------
    source : str
        DOT source, e.g. from :func:`get_dot_graph` or :func:`dot_digraph`.
    to_file : str or os.PathLike
        Where to write; the extension (``.png``, ``.svg`` or ``.pdf``) picks the format.
        Missing parent folders are created.

    Returns
    -------
    RenderedGraph
        The written file, path-like and displayed inline by Jupyter.

    Raises
    ------
    ValueError
        If the extension is not one of png, svg, pdf.
    RuntimeError
        If ``dot`` is not installed (the message says how to install Graphviz) or fails.
    """
    path = Path(os.fspath(to_file)).expanduser()
    format = _format_of(path)
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError(INSTALL_GRAPHVIZ)
    path.parent.mkdir(parents=True, exist_ok=True)
    # An argument list with the source on stdin: no shell, no temporary file.
    result = subprocess.run(
        [dot, f"-T{format}", "-o", str(path)],
        input=source.encode("utf-8"),
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", errors="replace").strip()
        raise RuntimeError(
            f"render_dot: `dot -T{format}` failed with exit code {result.returncode} "
            f"while writing {str(path)!r}: {message}"
        )
    return RenderedGraph(path, format)


# =============================================================================================
# computational graphs
# =============================================================================================
def _variable_label(variable: Variable, verbose: bool) -> str:
    parts = [variable.name] if variable.name else []
    if verbose:
        details = f"{variable.shape} {variable.dtype}"
        if variable.device != "cpu":
            details += f" {variable.device}"
        parts.append(details)
    return "\n".join(parts)


def _function_label(function: Function) -> str:
    return type(function).__name__


def get_dot_graph(output: Variable, verbose: bool = True) -> str:
    """Return the DOT source of the computational graph behind ``output``.

    Variables are drawn as ellipses labelled with their name (if any) and, when ``verbose``,
    their shape and dtype (and device when not the CPU); Parameters are filled in a different
    colour.  Functions are boxes labelled with their class name.  Every use of a variable is
    an edge of its own, so a variable that feeds two functions (or one function twice) has one
    edge per use.  Node ids are numbered in the order of the forward pass, so the same graph
    always gives the same source.

    Parameters
    ----------
    output : Variable
        The variable whose history is drawn.
    verbose : bool
        Add shapes and dtypes to the variable labels.

    Returns
    -------
    str
        DOT source; render it with :func:`render_dot` or :func:`plot_dot_graph`.

    Examples
    --------
    >>> import numpy as np
    >>> from pygrad import Variable, functions as F
    >>> x = Variable(np.ones((2, 3), np.float32), name="x")
    >>> source = get_dot_graph(F.tanh(x))
    >>> '"f0" [label="Tanh"' in source and 'label="x\\\\n(2, 3) float32"' in source
    True
    """
    if not isinstance(output, Variable):
        raise TypeError(f"get_dot_graph: expected a Variable, got {type(output).__name__}")
    statements = []
    ids: dict[int, str] = {}

    def variable_id(variable: Variable) -> str:
        key = id(variable)
        if key not in ids:
            ids[key] = f"v{len(ids)}"
            style = _PARAMETER_STYLE if isinstance(variable, Parameter) else _VARIABLE_STYLE
            statements.append(dot_node(ids[key], _variable_label(variable, verbose), **style))
        return ids[key]

    functions = topological_order(output)
    if not functions:
        variable_id(output)
    for index, function in enumerate(functions):
        function_id = f"f{index}"
        statements.append(dot_node(function_id, _function_label(function), **_FUNCTION_STYLE))
        for x in function.inputs:
            statements.append(dot_edge(variable_id(x), function_id))
        for y_ref in function.outputs:
            y = y_ref()
            # An output nobody holds any more (an unused result of a multi-output function)
            # is gone; only the living ones are drawn.
            if y is not None:
                statements.append(dot_edge(function_id, variable_id(y)))
    return dot_digraph(statements)


def plot_dot_graph(output: Variable, verbose: bool = True, to_file="graph.png") -> RenderedGraph:
    """Draw the computational graph behind ``output`` with Graphviz.

    Parameters
    ----------
    output : Variable
        The variable whose history is drawn.
    verbose : bool
        Add shapes and dtypes to the variable labels.
    to_file : str or os.PathLike
        The picture to write: ``.png``, ``.svg`` or ``.pdf``; parent folders are created.

    Returns
    -------
    RenderedGraph
        The written file, path-like and displayed inline by Jupyter.

    Raises
    ------
    RuntimeError
        If Graphviz's ``dot`` is not installed; the message says how to install it.
    """
    return render_dot(get_dot_graph(output, verbose=verbose), to_file)


# =============================================================================================
# models
# =============================================================================================
def _shapes_text(shapes) -> str:
    return ", ".join(str(tuple(shape)) for shape in shapes)


def _edge_attributes(crossed: tuple) -> dict:
    if len(crossed) > 4:
        crossed = crossed[:2] + ("...",) + crossed[-1:]
    return {"label": ", ".join(crossed)} if crossed else {}


def get_model_dot_graph(model, verbose: bool = True, example_inputs: tuple = ()) -> str:
    """Return the DOT source of the leaf layers a model calls in a forward pass.

    The model runs a forward pass of its own for the picture (see :meth:`nn.Module.plot`): on
    ``example_inputs`` when given, else on zero-filled inputs shaped like those of its last
    call; under ``test_mode()``, so no parameter or buffer changes.  Each leaf layer call is a
    box labelled with its attribute name and class and, when ``verbose``, its input and output
    shapes.  Edges follow the data: the functional ops applied between two layers (such as
    ``ReLU``) label the edge that crosses them.

    Parameters
    ----------
    model : pygrad.nn.Module
        The model to draw.
    verbose : bool
        Add input and output shapes to the labels.
    example_inputs : tuple
        Arguments to trace the model with; optional once the model has been called.

    Returns
    -------
    str
        DOT source; render it with :func:`render_dot`.

    Raises
    ------
    RuntimeError
        If the model has not been called yet and no example input is given.
    """
    trace = model._forward_trace(*example_inputs)

    def label(title: str, details: str) -> str:
        return f"{title}\n{details}" if verbose else title

    statements = [
        dot_node(f"in{index}", label("input", str(shape)), **_VARIABLE_STYLE)
        for index, shape in enumerate(trace.input_shapes)
    ]
    for index, call in enumerate(trace.calls):
        title = f"{call.name}: {call.kind}" if call.name else call.kind
        details = "\n".join(
            f"{side}: {_shapes_text(shapes)}"
            for side, shapes in (("in", call.input_shapes), ("out", call.output_shapes))
            if shapes
        )
        statements.append(dot_node(f"layer{index}", label(title, details), **_FUNCTION_STYLE))
    statements += [
        dot_node(f"out{index}", label("output", str(shape)), **_VARIABLE_STYLE)
        for index, shape in enumerate(trace.output_shapes)
    ]
    statements += [dot_edge(tail, head, **_edge_attributes(ops)) for tail, head, ops in trace.edges]
    return dot_digraph(statements)


def plot_model(
    model, to_file="model.png", verbose: bool = True, example_inputs: tuple = ()
) -> RenderedGraph:
    """Draw the leaf layers a model calls in a forward pass (see :meth:`nn.Module.plot`).

    Parameters
    ----------
    model : pygrad.nn.Module
        The model to draw.
    to_file : str or os.PathLike
        The picture to write: ``.png``, ``.svg`` or ``.pdf``; parent folders are created.
    verbose : bool
        Add input and output shapes to the labels.
    example_inputs : tuple
        Arguments to trace the model with; optional once the model has been called.

    Returns
    -------
    RenderedGraph
        The written file, path-like and displayed inline by Jupyter.

    Raises
    ------
    RuntimeError
        Before any call when no example input is given, or when Graphviz's ``dot`` is not
        installed.
    """
    return render_dot(
        get_model_dot_graph(model, verbose=verbose, example_inputs=example_inputs), to_file
    )
