# Sourced by scripts/bench-vs-pytorch.sh and scripts/make-fixtures.sh: makes sure the venv at $1 has
# torch + transformers at the versions the fixtures record (tests/fixtures/*/reference.json);
# installs them when missing (about 3 GB, several minutes). Never needed by CI or the tests.
ensure_torch_venv() {
  local venv="$1" py="$1/bin/python"
  if ! "$py" -c "import torch, transformers, PIL, safetensors, numpy, tokenizers" 2>/dev/null; then
    echo "installing torch + transformers into $venv (about 3 GB, several minutes)"
    python3 -m venv "$venv"
    "$py" -m pip install --quiet --upgrade pip
    "$py" -m pip install --quiet "torch==2.15.*" "transformers==5.23.*" safetensors numpy pillow tokenizers
  fi
}
