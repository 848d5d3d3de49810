#!/usr/bin/env bash
# Create the virtual environment and install ns2-hf with every extra.
# torch==2.13.0 goes in first (CPU wheel); setup.py's ranges accept it, so nothing pulls CUDA.
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

# System packages pip cannot give: libsndfile for audio, chromium for the browser test, and real recorded
# speech for codec training/evaluation (codec2-examples, pocketsphinx-testdata, klettres-data:
# scripts/fetch_real_speech.py).
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  missing=""
  for pkg in libsndfile1 chromium chromium-driver codec2-examples pocketsphinx-testdata klettres-data; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
  done
  if [ -n "$missing" ]; then
    echo "[setup] apt-get install$missing"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null) \
      || echo "[setup] warning: could not install$missing (the browser test will fail without chromium)"
  fi
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/pip" install -q torch==2.13.0
"$VENV/bin/pip" install -q -e ".[dev]"
echo "[setup] ready: $VENV"
