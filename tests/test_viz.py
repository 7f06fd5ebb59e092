"""pygrad.viz: DOT source of computational graphs and of models, and rendering with Graphviz."""

import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from pygrad import Function, Parameter, Variable, nn, no_grad, utils, viz
from pygrad import functions as F

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(
    not HAS_DOT, reason="Graphviz's `dot` is not installed (apt-get install graphviz)"
)

NODE = re.compile(r'^\s*"(?P<id>[^"]+)" \[label="(?P<label>(?:[^"\\]|\\.)*)"(?P<rest>.*)\];$')
EDGE = re.compile(r'^\s*"(?P<tail>[^"]+)" -> "(?P<head>[^"]+)"')


def parse(source: str):
    """Return ``({node id: (label, attributes)}, [(tail, head), ...])`` of simple DOT source."""
    nodes, edges = {}, []
    for line in source.splitlines():
        edge = EDGE.match(line)
        if edge:
            edges.append((edge["tail"], edge["head"]))
            continue
        node = NODE.match(line)
        if node:
            nodes[node["id"]] = (node["label"], node["rest"])
    return nodes, edges


def node_with_label(nodes: dict, label: str) -> str:
    matches = [node_id for node_id, (text, _) in nodes.items() if text == label]
    assert len(matches) == 1, f"expected one node labelled {label!r} in {nodes}"
    return matches[0]


class Halves(Function):
    def forward(self, x):
        return x[:1], x[1:]

    def backward(self, g0, g1):
        return F.concat([g0, g1])


# =============================================================================================
# get_dot_graph
# =============================================================================================
def test_dot_graph_labels_variables_with_name_shape_dtype_and_functions_with_class():
    x = Variable(np.ones((2, 3), np.float32), name="x")
    y = F.tanh(x)
    y.name = "y"
    nodes, edges = parse(viz.get_dot_graph(y))
    x_id = node_with_label(nodes, "x\\n(2, 3) float32")
    y_id = node_with_label(nodes, "y\\n(2, 3) float32")
    tanh_id = node_with_label(nodes, "Tanh")
    assert 'shape="ellipse"' in nodes[x_id][1] and 'shape="box"' in nodes[tanh_id][1]
    assert sorted(edges) == sorted([(x_id, tanh_id), (tanh_id, y_id)])


def test_dot_graph_without_verbose_shows_names_only():
    x = Variable(np.ones((2, 3), np.float64), name="x")
    source = viz.get_dot_graph(F.exp(x) * 2.0, verbose=False)
    nodes, _ = parse(source)
    assert "(2, 3)" not in source and "float64" not in source
    labels = sorted(label for label, _ in nodes.values())
    assert labels == ["", "", "Exp", "MulConstant", "x"]


def test_dot_graph_of_unnamed_variable_shows_shape_and_dtype():
    y = Variable(np.arange(4)) + 1
    nodes, _ = parse(viz.get_dot_graph(y))
    assert sum(label == f"(4,) {y.dtype}" for label, _ in nodes.values()) == 2


def test_a_variable_feeding_two_functions_keeps_both_edges():
    x = Variable(np.array([0.5, 1.0]), name="x")
    y = F.tanh(x) + F.exp(x)
    nodes, edges = parse(viz.get_dot_graph(y))
    x_id = node_with_label(nodes, "x\\n(2,) float64")
    heads = sorted(nodes[head][0] for tail, head in edges if tail == x_id)
    assert heads == ["Exp", "Tanh"]
    assert len(edges) == 7  # x->Tanh, x->Exp, Tanh->a, Exp->b, a->Add, b->Add, Add->y


def test_a_variable_used_twice_by_one_function_has_two_edges():
    x = Variable(np.array(2.0), name="x")
    nodes, edges = parse(viz.get_dot_graph(x * x))
    x_id = node_with_label(nodes, "x\\n() float64")
    mul_id = node_with_label(nodes, "Mul")
    assert edges.count((x_id, mul_id)) == 2


def test_each_function_and_variable_appears_once_in_a_diamond():
    x = Variable(np.array(1.0), name="x")
    a = F.tanh(x)
    y = a * 2.0 + F.exp(a)
    nodes, edges = parse(viz.get_dot_graph(y))
    assert len(nodes) == 4 + 5  # functions: Tanh MulConstant Exp Add; variables: x a b c y
    assert len(set(edges)) == len(edges) == 9


def test_dot_graph_ids_are_stable():
    def build():
        x = Variable(np.ones(3), name="x")
        W = Parameter(np.ones(3), name="W")
        return F.sum(F.tanh(x * W) + x)

    first = build()
    assert viz.get_dot_graph(first) == viz.get_dot_graph(first)
    assert viz.get_dot_graph(first) == viz.get_dot_graph(build())


def test_parameters_are_drawn_apart_from_variables():
    x = Variable(np.ones(2), name="x")
    W = Parameter(np.ones(2), name="W")
    nodes, _ = parse(viz.get_dot_graph(x * W))
    x_attributes = nodes[node_with_label(nodes, "x\\n(2,) float64")][1]
    W_attributes = nodes[node_with_label(nodes, "W\\n(2,) float64")][1]
    assert 'shape="ellipse"' in W_attributes and x_attributes != W_attributes


def test_dot_graph_of_a_leaf_is_one_node():
    nodes, edges = parse(viz.get_dot_graph(Variable(1.0, name="lonely")))
    assert [label for label, _ in nodes.values()] == ["lonely\\n() float64"] and edges == []


def test_dot_graph_skips_outputs_that_no_longer_exist():
    x = Variable(np.arange(4.0), name="x")
    low = Halves()(x)[0]  # the second output is dropped at once
    nodes, edges = parse(viz.get_dot_graph(low))
    assert sorted(label for label, _ in nodes.values()) == [
        "(1,) float64",
        "Halves",
        "x\\n(4,) float64",
    ]
    assert len(edges) == 2


def test_dot_graph_of_a_deep_chain_needs_no_recursion():
    y = Variable(1.0)
    for _ in range(5_000):
        y = y * 1.0
    source = viz.get_dot_graph(y)
    assert source.count("MulConstant") == 5_000


def test_dot_graph_rejects_non_variables():
    with pytest.raises(TypeError, match="get_dot_graph: expected a Variable"):
        viz.get_dot_graph(np.ones(3))


def test_utils_get_dot_graph_delegates_to_viz():
    y = F.tanh(Variable(1.0, name="x"))
    assert utils.get_dot_graph(y, verbose=False) == viz.get_dot_graph(y, verbose=False)


# =============================================================================================
# DOT writing helpers
# =============================================================================================
@pytest.mark.parametrize(
    "text, quoted",
    [
        ("plain", '"plain"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("two\nlines", '"two\\nlines"'),
        ("crlf\r\nline", '"crlf\\nline"'),
        ("<html> & {braces} -> ;", '"<html> & {braces} -> ;"'),
        (3, '"3"'),
    ],
)
def test_dot_quote_escapes_quotes_backslashes_and_line_breaks(text, quoted):
    assert viz.dot_quote(text) == quoted


def test_dot_node_edge_and_digraph_build_valid_statements():
    source = viz.dot_digraph(
        [viz.dot_node("a b", 'say "x"', shape="box"), viz.dot_edge("a b", "c", label="1")],
        rankdir="LR",
    )
    assert source.splitlines() == [
        'digraph "g" {',
        '  rankdir="LR";',
        '  "a b" [label="say \\"x\\"", shape="box"];',
        '  "a b" -> "c" [label="1"];',
        "}",
    ]


@needs_dot
def test_awkward_names_survive_rendering(tmp_path):
    x = Variable(np.ones(2), name='a "quoted" \\ name\nwith; {braces}')
    target = viz.plot_dot_graph(F.tanh(x), to_file=tmp_path / "awkward.svg")
    svg = target.path.read_text()
    assert "&quot;quoted&quot;" in svg or '"quoted"' in svg
    assert "with; {braces}" in svg


# =============================================================================================
# rendering
# =============================================================================================
@needs_dot
def test_plot_dot_graph_writes_a_png_and_creates_folders(tmp_path):
    x = Variable(np.ones((2, 2), np.float32), name="x")
    target = tmp_path / "deep" / "folder" / "graph.png"
    result = viz.plot_dot_graph(F.tanh(x) * x, to_file=str(target))
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert os.fspath(result) == str(target)
    assert result._repr_png_() == target.read_bytes()
    assert result._repr_svg_() is None


@needs_dot
@pytest.mark.parametrize(
    "extension, magic", [("svg", b"<?xml"), ("pdf", b"%PDF"), ("PNG", b"\x89PNG")]
)
def test_plot_dot_graph_takes_the_format_from_the_extension(tmp_path, extension, magic):
    target = tmp_path / f"graph.{extension}"
    result = utils.plot_dot_graph(F.exp(Variable(1.0)), to_file=target)
    assert target.read_bytes().startswith(magic)
    assert result.format == extension.lower()


@needs_dot
def test_rendered_svg_displays_in_notebooks(tmp_path):
    result = viz.plot_dot_graph(F.exp(Variable(1.0)), to_file=tmp_path / "g.svg")
    assert "<svg" in result._repr_svg_()
    assert result._repr_png_() is None


def test_unknown_extension_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match=r"\.png, \.svg or \.pdf.*'\.jpg'"):
        viz.plot_dot_graph(Variable(1.0), to_file=tmp_path / "graph.jpg")
    with pytest.raises(ValueError, match="no extension"):
        viz.plot_dot_graph(Variable(1.0), to_file=tmp_path / "graph")


def test_missing_dot_says_how_to_install_graphviz(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    with pytest.raises(RuntimeError) as error:
        viz.plot_dot_graph(F.tanh(Variable(1.0)), to_file=tmp_path / "out" / "graph.png")
    message = str(error.value)
    for command in ("apt-get install graphviz", "brew install graphviz", "conda install graphviz"):
        assert command in message
    assert not (tmp_path / "out").exists()


def test_dot_runs_with_an_argument_list_and_no_shell(tmp_path, monkeypatch):
    calls = []

    def fake_run(args, **kwargs):
        calls.append((args, kwargs))
        return subprocess.CompletedProcess(args, 0, b"", b"")

    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: "/opt/graphviz/bin/dot")
    monkeypatch.setattr(subprocess, "run", fake_run)
    target = tmp_path / "name with spaces; rm -rf" / "g.svg"
    viz.render_dot("digraph { a -> b }", target)
    ((args, kwargs),) = calls
    assert args == ["/opt/graphviz/bin/dot", "-Tsvg", "-o", str(target)]
    assert not kwargs.get("shell", False)
    assert kwargs["input"] == b"digraph { a -> b }"


@needs_dot
def test_dot_failure_is_reported_with_its_message(tmp_path):
    with pytest.raises(RuntimeError, match="render_dot: `dot -Tpng` failed.*syntax error"):
        viz.render_dot("digraph { this is not ] dot", tmp_path / "broken.png")


# =============================================================================================
# models
# =============================================================================================
class TwoLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 5)
        self.fc2 = nn.Linear(5, 3)

    def forward(self, x):
        return self.fc2(F.tanh(self.fc1(x)))


def test_model_graph_before_a_forward_pass_asks_for_one():
    with pytest.raises(RuntimeError, match="call the model on an input first"):
        viz.get_model_dot_graph(TwoLayers())


def test_model_graph_shows_layers_with_shapes_and_the_ops_between_them():
    model = TwoLayers()
    y = model(Variable(np.ones((2, 6), np.float32)))
    nodes, edges = parse(viz.get_model_dot_graph(model))
    fc1 = node_with_label(nodes, "fc1: Linear\\nin: (2, 6)\\nout: (2, 5)")
    fc2 = node_with_label(nodes, "fc2: Linear\\nin: (2, 5)\\nout: (2, 3)")
    source_input = node_with_label(nodes, "input\\n(2, 6)")
    output = node_with_label(nodes, "output\\n(2, 3)")
    assert edges == [(source_input, fc1), (fc1, fc2), (fc2, output)]
    assert 'label="Tanh"' in viz.get_model_dot_graph(model)
    assert y.shape == (2, 3)


def test_model_graph_without_verbose_names_layers_only():
    model = TwoLayers()
    model(Variable(np.ones((2, 6), np.float32)))
    nodes, _ = parse(viz.get_model_dot_graph(model, verbose=False))
    assert sorted(label for label, _ in nodes.values()) == [
        "fc1: Linear",
        "fc2: Linear",
        "input",
        "output",
    ]


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 4)
        self.fc2 = nn.Linear(4, 4)
        self.fc3 = nn.Linear(4, 2)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        return self.fc3(h + self.fc2(h))


def residual_edges(model, *example_inputs) -> list:
    source = viz.get_model_dot_graph(model, verbose=False, example_inputs=example_inputs)
    nodes, edges = parse(source)
    name = {node: label for node, (label, _) in nodes.items()}
    return sorted((name[tail], name[head]) for tail, head in edges)


RESIDUAL_EDGES = [
    ("fc1: Linear", "fc2: Linear"),
    ("fc1: Linear", "fc3: Linear"),
    ("fc2: Linear", "fc3: Linear"),
    ("fc3: Linear", "output"),
    ("input", "fc1: Linear"),
]


def test_model_graph_draws_a_skip_connection_with_the_ops_on_each_edge():
    model = Residual()
    y = model(Variable(np.ones((2, 4), np.float32)))
    assert residual_edges(model) == RESIDUAL_EDGES
    source = viz.get_model_dot_graph(model)
    assert 'label="ReLU, Add"' in source and 'label="Add"' in source
    assert y.shape == (2, 2)


def test_model_graph_keeps_every_edge_after_the_output_is_gone():
    model = Residual()
    model(Variable(np.ones((2, 4), np.float32)))  # the output and its graph are freed here
    assert residual_edges(model) == RESIDUAL_EDGES


def test_model_graph_after_a_forward_pass_under_no_grad_is_drawn_all_the_same():
    # The picture comes from a traced pass of its own, which records the graph.
    model = Residual()
    with no_grad():
        model(Variable(np.ones((2, 4), np.float32)))
        assert residual_edges(model) == RESIDUAL_EDGES


def test_model_graph_before_a_call_is_drawn_from_example_inputs():
    model = Residual()
    x = np.ones((5, 4), np.float32)
    nodes, _ = parse(viz.get_model_dot_graph(model, example_inputs=(x,)))
    node_with_label(nodes, "fc3: Linear\\nin: (5, 4)\\nout: (5, 2)")
    assert residual_edges(model, x) == RESIDUAL_EDGES


def test_model_graph_uses_the_shapes_of_the_last_call():
    model = TwoLayers()
    model(Variable(np.ones((2, 6), np.float32)))
    model(np.ones((7, 6), np.float32))
    nodes, _ = parse(viz.get_model_dot_graph(model))
    node_with_label(nodes, "input\\n(7, 6)")
    node_with_label(nodes, "fc2: Linear\\nin: (7, 5)\\nout: (7, 3)")


@needs_dot
def test_module_plot_writes_a_picture(tmp_path):
    model = TwoLayers()
    model(Variable(np.ones((2, 6), np.float32)))
    result = model.plot(to_file=tmp_path / "model.png")
    assert (tmp_path / "model.png").read_bytes().startswith(b"\x89PNG")
    assert os.fspath(result) == str(tmp_path / "model.png")


@needs_dot
def test_module_plot_traces_example_inputs_and_takes_a_file_name_alone(tmp_path):
    model = TwoLayers()
    model.plot(np.ones((3, 6), np.float32), to_file=tmp_path / "example.svg")
    assert "in: (3, 6)" in (tmp_path / "example.svg").read_text()
    model(np.ones((4, 6), np.float32))
    result = model.plot(str(tmp_path / "last.svg"))  # pygrad 0.1.0 passed the name positionally
    assert "in: (4, 6)" in (tmp_path / "last.svg").read_text()
    assert os.fspath(result) == str(tmp_path / "last.svg")


# =============================================================================================
# names no picture could show as they are
# =============================================================================================
@pytest.mark.parametrize(
    "name, shown",
    [
        ("a\tb\x0bc\x1bd", "a\tb\u240bc\u241bd"),  # control pictures; a tab is fine in XML
        ("nul\x00here", "nul\u2400here"),
        ("lone \udc80 surrogate", "lone \ufffd surrogate"),
        ("del\x7f c1\x85 nonchar\ufffe", "del\u2421 c1\ufffd nonchar\ufffd"),
    ],
    ids=["controls", "nul", "surrogate", "del-c1-nonchar"],
)
def test_dot_quote_replaces_characters_xml_or_dot_cannot_hold(name, shown):
    assert viz.dot_quote(name) == f'"{shown}"'
    viz.dot_quote(name).encode("utf-8")  # a lone surrogate would raise UnicodeEncodeError


def test_dot_quote_cuts_long_text_and_keeps_long_ids_apart():
    first, second = "x" * 20_000, "x" * 19_999 + "y"
    quoted = viz.dot_quote(first)
    assert len(quoted) < 1100 and "(20000 characters," in quoted
    assert viz.dot_quote(second) != quoted


@needs_dot
@pytest.mark.parametrize(
    "name",
    ["a\tb\x0bc\x1bd", "nul\x00here", "x" * 20_000, "lone \udc80 surrogate", "c1\x85\x9f\x7f"],
    ids=["controls", "nul", "long", "surrogate", "c1-del"],
)
def test_hostile_names_render_to_well_formed_svg(tmp_path, name):
    import xml.etree.ElementTree as ElementTree

    x = Variable(np.ones(2), name=name)
    target = viz.plot_dot_graph(F.tanh(x), to_file=tmp_path / "hostile.svg")
    ElementTree.fromstring(target.path.read_bytes())  # raises on anything XML cannot hold
