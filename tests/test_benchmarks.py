"""benchmarks/opencl.py runs as a script and prints its table (a smoke test: no figure is checked)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "opencl.py"
CHEAP_ROWS = "rawop,reads"


def run_benchmark(*args: str, fake_modules: dict | None = None, tmp_path: Path):
    """Run benchmarks/opencl.py; ``fake_modules`` ({name: source}) shadow installed modules."""
    path = [str(REPO)]
    if fake_modules:
        for name, source in fake_modules.items():
            (tmp_path / f"{name}.py").write_text(source)
        path.insert(0, str(tmp_path))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def table_rows(stdout: str) -> list[list[str]]:
    rows = [line for line in stdout.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in rows]


def test_opencl_benchmark_prints_the_chosen_rows_as_a_markdown_table(opencl, tmp_path):
    result = run_benchmark("--quick", "--only", CHEAP_ROWS, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    header, rule, *body = rows
    assert header[:4] == ["measure", "NumPy path", "OpenCL path", "PyTorch CPU"]
    assert header[4] == "target"
    assert set("".join(rule)) <= set("-: ")
    assert [row[0] for row in body] == [
        "raw backend array op (add, 16 floats), µs",
        "blocking device→host reads per training step",
    ]
    raw_op, reads = body
    assert re.fullmatch(r"\d+\.\d", raw_op[1]) and re.fullmatch(r"\d+\.\d", raw_op[2])
    assert reads[1] == "-" and re.fullmatch(r"\d+", reads[2])
    assert result.stdout.rstrip().endswith(
        f"python benchmarks/opencl.py --quick --only {CHEAP_ROWS}"
    )


def test_opencl_benchmark_shows_a_dash_for_pytorch_when_it_is_missing(opencl, tmp_path):
    no_torch = {"torch": "raise ImportError('no torch here')\n"}
    result = run_benchmark("--quick", "--only", "rawop", fake_modules=no_torch, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    (raw_op,) = table_rows(result.stdout)[2:]
    assert raw_op[3] == "-"
    assert "no PyTorch" in result.stdout


def test_opencl_benchmark_says_what_is_missing_without_opencl(tmp_path):
    no_opencl = {"pyopencl": "raise ImportError('no pyopencl here')\n"}
    result = run_benchmark("--quick", "--only", "rawop", fake_modules=no_opencl, tmp_path=tmp_path)
    assert result.returncode == 1
    assert "needs an OpenCL device" in result.stderr and "pygrad[opencl]" in result.stderr
    assert "|" not in result.stdout


def test_opencl_benchmark_refuses_an_unknown_row(tmp_path):
    result = run_benchmark("--only", "rawop,nosuchrow", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "unknown rows nosuchrow" in result.stderr
