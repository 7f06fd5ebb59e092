#!/usr/bin/env bash
# The main job: train a model on built-in data, save a checkpoint and draw the graph, in .venv.
#
#   bash scripts/main.sh [ARGS...]     # ARGS go to the example, e.g. --epochs 1
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/venv.sh"

ensure_venv plot
cd "$REPO_ROOT"

# examples/digits_mlp.py (train on the bundled Digits, report accuracy, save and reload a
# checkpoint, draw the model) is the main job.  Trees that predate it run curve_fit.py, which
# fits a sine wave and draws its computational graph, so this command works at every commit.
if [ -f examples/digits_mlp.py ]; then
    example=examples/digits_mlp.py
else
    example=examples/curve_fit.py
fi
echo "running $example${*:+ $*}"
exec "$VENV_PYTHON" "$example" "$@"    # each example writes under out/ unless given --out
