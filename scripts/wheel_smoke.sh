#!/usr/bin/env bash
# CI: build the wheel, install it into a fresh venv the way a user would (torch's CPU wheel first, then the
# wheel with its declared runtime dependencies only, no extras), and speak from the installed console script
# outside the source tree. pip's cache is reused, so a warm run costs about a minute.
set -euo pipefail
PYTHON=${PYTHON:-python3}
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ns2-wheel-smoke.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# build from a copy of the tracked files, so the checkout gets no build/ folder
mkdir -p "$WORK/src"
(cd "$REPO" && git ls-files -z | xargs -0 cp --parents -t "$WORK/src")
"$PYTHON" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/dist" "$WORK/src"
"$PYTHON" -m venv "$WORK/venv"
PIP="$WORK/venv/bin/pip"
"$PIP" install -q torch==2.13.0
"$PIP" install -q "$WORK"/dist/ns2_hf-*.whl
"$PIP" check

cd "$WORK"  # outside the checkout: only the installed package can be imported
export OMP_NUM_THREADS=1
"$WORK/venv/bin/python" - <<'PY'
import sys
import ns2_hf
assert "torch" not in sys.modules, "import ns2_hf must stay light"
assert ns2_hf.__file__.startswith(sys.prefix), ns2_hf.__file__
print("[smoke] imported", ns2_hf.__version__, "from", ns2_hf.__file__)
PY
"$WORK/venv/bin/ns2-tts" --help >/dev/null
cp "$REPO/examples/prompt.wav" prompt.wav
"$WORK/venv/bin/ns2-tts" --untrained --text "A plain pip install speaks. Two sentences." --prompt prompt.wav --out untrained.wav --steps 2
"$WORK/venv/bin/ns2-tts" --text "The shipped model is in the wheel." --prompt prompt.wav --out shipped.wav --steps 2
echo "[smoke] wheel OK"
