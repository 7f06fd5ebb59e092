"""The examples run end to end as scripts, in a short mode, and their shared helpers work."""

from __future__ import annotations

import importlib.util
import io
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def _load_common():
    """Import examples/_common.py without putting the examples folder on sys.path."""
    spec = importlib.util.spec_from_file_location("examples_common", EXAMPLES / "_common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_common = _load_common()

# Short runs: one epoch, and less data where the example has an option for it.
SHORT_RUNS = {
    "spiral": ["--num-data", "30"],
    "digits_mlp": [],
    "digits_cnn": [],
    "sine_lstm": ["--length", "300", "--window", "10"],
}

NUMBER = r"\d+\.\d+"
CLASSIFIER_LINE = re.compile(
    rf"^epoch 1/1  train loss {NUMBER}  train acc {NUMBER}%  test acc {NUMBER}%  time {NUMBER} s$"
)
REGRESSION_LINE = re.compile(
    rf"^epoch 1/1  train loss {NUMBER}  test mse {NUMBER}  time {NUMBER} s$"
)


def run_example(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``examples/<name>.py`` with ``args`` in a fresh interpreter using this source tree."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # The examples' matrices are small: BLAS threads would only contend with parallel test runs.
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_succeeded(result: subprocess.CompletedProcess) -> None:
    assert (
        result.returncode == 0
    ), f"exit code {result.returncode}\n{result.stdout}\n{result.stderr}"


def read_png(path: Path) -> np.ndarray:
    """Decode the PNG files :func:`_common.write_png` writes (8-bit, unfiltered, one IDAT)."""
    content = path.read_bytes()
    assert content[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, {}
    while position < len(content):
        (length,) = struct.unpack(">I", content[position : position + 4])
        tag = content[position + 4 : position + 8]
        payload = content[position + 8 : position + 8 + length]
        (checksum,) = struct.unpack(">I", content[position + 8 + length : position + 12 + length])
        assert checksum == zlib.crc32(tag + payload) & 0xFFFFFFFF, f"bad CRC in {tag!r}"
        chunks[tag] = payload
        position += 12 + length
    assert set(chunks) == {b"IHDR", b"IDAT", b"IEND"}
    width, height, depth, colour_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 8
    channels = {0: 1, 2: 3}[colour_type]
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(height, -1)
    assert (rows[:, 0] == 0).all(), "every scanline uses filter type 0"
    pixels = rows[:, 1:].reshape(height, width, channels)
    return pixels[:, :, 0] if channels == 1 else pixels


# --- the examples as scripts --------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SHORT_RUNS))
def test_example_help_lists_the_common_options(name, tmp_path):
    result = run_example(name, "--help", cwd=tmp_path)
    assert_succeeded(result)
    for option in ("--epochs", "--batch-size", "--lr", "--seed", "--device", "--out"):
        assert option in result.stdout
    assert f"out/{name}" in result.stdout


@pytest.mark.parametrize("name", [*sorted(SHORT_RUNS), "curve_fit"])
def test_example_refuses_an_unknown_device(name, tmp_path):
    result = run_example(name, "--device", "gpu", cwd=tmp_path)
    assert result.returncode == 2
    assert "--device must be" in result.stderr and "'gpu'" in result.stderr


@pytest.mark.parametrize("name", sorted(SHORT_RUNS))
def test_example_refuses_a_non_positive_epoch_count(name, tmp_path):
    result = run_example(name, "--epochs", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert "--epochs must be positive" in result.stderr


@pytest.mark.parametrize("name", sorted(SHORT_RUNS))
def test_example_runs_one_epoch_prints_its_progress_line_and_saves_a_checkpoint(name, tmp_path):
    out = tmp_path / "out"
    result = run_example(name, "--epochs", "1", "--out", str(out), *SHORT_RUNS[name], cwd=tmp_path)
    assert_succeeded(result)
    lines = result.stdout.splitlines()
    pattern = REGRESSION_LINE if name == "sine_lstm" else CLASSIFIER_LINE
    assert any(pattern.match(line) for line in lines), result.stdout
    assert (out / "model.npy").is_file()
    # The checkpoint holds no pickle.
    np.load(out / "model.npy", allow_pickle=False)
    # stderr is not a terminal here, so no progress bar is drawn.
    assert "\r" not in result.stderr and "[#" not in result.stderr
    # Nothing is written outside --out.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]


def test_spiral_writes_a_decision_boundary_picture(tmp_path):
    result = run_example("spiral", "--epochs", "1", "--num-data", "20", "--out", ".", cwd=tmp_path)
    assert_succeeded(result)
    image = read_png(tmp_path / "decision_boundary.png")
    assert image.shape == (400, 400, 3)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 3  # regions and dots in several colours


def test_sine_lstm_writes_a_prediction_plot(tmp_path):
    result = run_example(
        "sine_lstm", "--epochs", "1", "--length", "200", "--window", "8", "--out", ".", cwd=tmp_path
    )
    assert_succeeded(result)
    image = read_png(tmp_path / "prediction.png")
    assert image.ndim == 3 and image.shape[2] == 3
    assert ((image == (214, 39, 40)).all(axis=2)).any(), "the prediction curve is drawn in red"


@pytest.mark.parametrize("name, target", [("digits_mlp", 0.97), ("digits_cnn", 0.98)])
def test_digits_example_reaches_its_target_accuracy_and_reloads_its_checkpoint(
    name, target, tmp_path
):
    """The README's main job with default settings: the accuracy targets of the project."""
    result = run_example(name, "--out", str(tmp_path), cwd=tmp_path)
    assert_succeeded(result)
    final = re.search(rf"^test accuracy ({NUMBER})% after", result.stdout, re.MULTILINE)
    assert final, result.stdout
    assert float(final.group(1)) >= 100 * target
    reload = re.search(
        rf"test accuracy ({NUMBER})% before saving, ({NUMBER})% after loading", result.stdout
    )
    assert reload and reload.group(1) == reload.group(2) == final.group(1)
    if shutil.which("dot"):
        assert (tmp_path / "model.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "model picture skipped: Graphviz" in result.stdout


# --- the examples on OpenCL ---------------------------------------------------------------------

# Short runs whose final figure (test accuracy in %, or a mean squared error) is compared between
# the devices (digits_mlp has its own test, at the default settings).  Runs without dropout follow the same path up to float32 rounding; those with
# dropout draw other masks on the device, so their accuracy may differ by a few test images.
DEVICE_RUNS = {
    "spiral": (["--epochs", "20"], rf"^test accuracy ({NUMBER})%$", 1.0),
    "digits_cnn": (["--epochs", "1"], rf"^test accuracy ({NUMBER})% after", 1.5),
    "sine_lstm": (
        ["--epochs", "3", "--length", "300", "--window", "10"],
        rf"^test MSE ({NUMBER}) against",
        0.001,
    ),
    "curve_fit": (
        ["--steps", "400", "--lr", "0.1", "--log-every", "400"],
        rf"^final MSE ({NUMBER})",
        0.0005,
    ),
}


def final_figure(result: subprocess.CompletedProcess, pattern: str) -> float:
    assert_succeeded(result)
    match = re.search(pattern, result.stdout, re.MULTILINE)
    assert match, result.stdout
    return float(match.group(1))


@pytest.mark.parametrize("name", sorted(DEVICE_RUNS))
def test_example_reaches_the_same_result_on_opencl_as_on_the_cpu(name, opencl, tmp_path):
    args, pattern, tolerance = DEVICE_RUNS[name]
    figures = {}
    for device in ("cpu", opencl):
        out = tmp_path / device.replace(":", "")
        result = run_example(name, *args, "--device", device, "--out", str(out), cwd=tmp_path)
        assert f"on {device}" in result.stdout
        figures[device] = final_figure(result, pattern)
    assert figures[opencl] == pytest.approx(figures["cpu"], abs=tolerance), figures


def test_digits_mlp_reaches_its_target_accuracy_on_opencl(opencl, tmp_path):
    result = run_example("digits_mlp", "--device", opencl, "--out", str(tmp_path), cwd=tmp_path)
    assert final_figure(result, rf"^test accuracy ({NUMBER})% after") >= 97.0
    reload = re.search(
        rf"test accuracy ({NUMBER})% before saving, ({NUMBER})% after loading", result.stdout
    )
    assert reload and reload.group(1) == reload.group(2)


def test_same_seed_repeats_a_run_on_opencl_bit_for_bit_across_processes(opencl, tmp_path):
    """Dropout draws its masks from the device's stream, which --seed must fix as well."""

    def train(seed: str, out: Path) -> tuple[list[str], bytes]:
        result = run_example(
            "digits_mlp",
            "--epochs",
            "1",
            "--seed",
            seed,
            "--device",
            opencl,
            "--out",
            str(out),
            cwd=tmp_path,
        )
        assert_succeeded(result)
        lines = [re.sub(r"time .*", "", line) for line in result.stdout.splitlines()]
        return [line for line in lines if line.startswith("epoch")], (
            out / "model.npy"
        ).read_bytes()

    first_lines, first_weights = train("3", tmp_path / "first")
    again_lines, again_weights = train("3", tmp_path / "again")
    _, other_weights = train("4", tmp_path / "other")
    assert first_lines and first_lines == again_lines
    assert first_weights == again_weights
    assert other_weights != first_weights


# --- the shared helpers ---------------------------------------------------------------------------


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_on_a_terminal_and_erases_itself_when_closed():
    terminal = FakeTerminal()
    with _common.ProgressBar(4, "epoch 1/2", stream=terminal, width=8, min_interval=0) as bar:
        for _ in range(4):
            bar.update()
    text = terminal.getvalue()
    assert "\repoch 1/2 [##......] 1/4" in text
    assert "[########] 4/4" in text
    assert text.endswith("\r")


def test_progress_bar_writes_nothing_when_the_stream_is_not_a_terminal():
    log = io.StringIO()
    with _common.ProgressBar(3, "epoch 1/1", stream=log, min_interval=0) as bar:
        for _ in range(3):
            bar.update()
    assert log.getvalue() == ""


def test_epoch_line_shows_accuracies_as_percentages_and_skips_missing_values():
    line = _common.epoch_line(3, 12, 0.4567, train_loss=0.25, train_acc=None, test_acc=0.9875)
    assert line == "epoch  3/12  train loss 0.25000  test acc 98.75%  time 0.46 s"


@pytest.mark.parametrize("shape", [(5, 7, 3), (4, 9)])
def test_write_png_round_trips_rgb_and_grey_images(shape, tmp_path):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    path = _common.write_png(tmp_path / "sub" / "picture.png", image)
    np.testing.assert_array_equal(read_png(path), image)


def test_write_png_refuses_non_uint8_images(tmp_path):
    with pytest.raises(ValueError, match=r"write_png: expected a uint8 image .* float64"):
        _common.write_png(tmp_path / "bad.png", np.zeros((2, 2, 3)))


def test_draw_polyline_leaves_no_gaps_between_distant_points():
    image = np.zeros((20, 40, 3), np.uint8)
    _common.draw_polyline(image, np.array([10.0, 10.0]), np.array([0.0, 39.0]), (255, 0, 0))
    assert (image[10, :, 0] == 255).all()


def _tiny_classifier():
    from pygrad import nn

    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def test_check_checkpoint_reloads_into_a_fresh_model_and_reports_both_accuracies(tmp_path, capsys):
    from pygrad.data import ArrayDataset, DataLoader

    rng = np.random.default_rng(0)
    dataset = ArrayDataset(rng.standard_normal((50, 4)).astype(np.float32), rng.integers(0, 3, 50))
    loader = DataLoader(dataset, 16, shuffle=False)
    model, fresh = _tiny_classifier(), _tiny_classifier()
    assert _common.check_checkpoint(model, fresh, tmp_path / "model.npy", loader)
    for (_, before), (_, after) in zip(model.named_params(), fresh.named_params()):
        np.testing.assert_array_equal(before.data, after.data)
    assert re.search(rf"{NUMBER}% before saving, {NUMBER}% after loading", capsys.readouterr().out)


def test_draw_model_without_graphviz_prints_the_reason_and_carries_on(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` on this PATH
    model = _tiny_classifier()
    assert not _common.draw_model(model, np.zeros((1, 4), np.float32), tmp_path / "model.png")
    assert "model picture skipped: Graphviz" in capsys.readouterr().out
    assert not (tmp_path / "model.png").exists()
    assert model.training  # the mode is restored
