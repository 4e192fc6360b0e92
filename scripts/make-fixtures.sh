#!/usr/bin/env bash
# Regenerates every committed test fixture from its reference (run by hand; CI never needs torch):
#   tests/fixtures/resample_golden.json            Pillow's resampling      (make_resample_golden.py)
#   tests/fixtures/{tokenizer,tiny_single,tiny_tiles}/, photo*.png
#                                                  tiny random Idefics3 checkpoints + HF outputs
#                                                                           (make_fixtures.py)
#   tests/fixtures/smolvlm_prompt_ids.json, photo_square.png, smolvlm_layout/
#                                                  SmolVLM-256M-Instruct's real files + a
#                                                  real-layout checkpoint + HF outputs
#                                                                           (make_smolvlm_fixtures.py)
#   tests/fixtures/smolvlm_layout/positions_reference.*
#                                                  pruned answers with renumbered and with kept
#                                                  position ids                (make_positions_fixtures.py)
#   tests/fixtures/pruning/                        the numpy port of the official selection code
#                                                                           (make_pruning_fixtures.py)
#
#   scripts/make-fixtures.sh [NAME ...]   NAME: resample, tiny, smolvlm, positions, pruning (default: all, in order)
#
# Needs a venv with torch + transformers (the versions the fixtures record): $FIXTURE_VENV, default
# .venv-bench (shared with scripts/bench-vs-pytorch.sh), installed when missing (about 3 GB).
# The tiny checkpoints' photo comes from scikit-image's wheel (pip download, no install).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${FIXTURE_VENV:-.venv-bench}"
PY="$VENV/bin/python"
. scripts/torch-venv.sh
ensure_torch_venv "$VENV"

export HF_HUB_OFFLINE=1
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(resample tiny smolvlm positions pruning)
for s in "${steps[@]}"; do
  echo "== $s"
  case "$s" in
    resample) "$PY" tests/fixtures/make_resample_golden.py ;;
    tiny) "$PY" tests/fixtures/make_fixtures.py ;;
    smolvlm) "$PY" tests/fixtures/make_smolvlm_fixtures.py ;;
    positions) "$PY" tests/fixtures/make_positions_fixtures.py ;;
    pruning) "$PY" tests/pruning_reference/make_pruning_fixtures.py ;;
    *) echo "make-fixtures: unknown step $s (resample, tiny, smolvlm, positions, pruning)" >&2; exit 2 ;;
  esac
done
