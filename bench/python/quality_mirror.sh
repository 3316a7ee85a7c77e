#!/usr/bin/env bash
# The quality recipe on the PyTorch mirror with more compute (docs/training.md, "More compute"):
# renders a training set, the test split of configs/data-randomised.ron and every set of `eval
# --shifts` (`trajhost-data shifts`: the same bytes) with trajhost-data, then trains the backbones
# side by side on one GPU, MINUTES of training each, scoring every set each minute (one JSON line
# each in OUT/<backbone>.jsonl; the sets are listed in OUT/shifts.tsv).
#
#   bench/python/quality_mirror.sh WORK OUT [backbone ...]
#   env: SAMPLES (training videos, 40000), MINUTES (5), DEVICE (cuda), PYTHON (python3),
#        TRAJHOST_DATA (target/release/trajhost-data), BACKGROUND (subtract_median, as
#        configs/quality.ron; keep for the recipe before), FOCAL_SCALE (e.g. "1.0, 1.0": the
#        training videos' lens range, appearance.training_focal_scale, in place of the config's;
#        the scored sets keep the config's lens)
# Every training video is drawn as a training-split sample (the config's split set to train
# only), so each has the training split's wider pixel noise, as the quality runs' videos do.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 2 ] || { echo "usage: $0 WORK OUT [backbone ...]" >&2; exit 2; }
work=$1 out=$2; shift 2
backbones=${*:-i3d slowfast magvit transformer}
data=${TRAJHOST_DATA:-target/release/trajhost-data}
python=${PYTHON:-python3}
minutes=${MINUTES:-5}
mkdir -p "$work" "$out"
split="split: (train: 0.8, val: 0.1, test: 0.1)"
train=$(cat configs/data-randomised.ron)
[[ $train == *"$split"* ]] || { echo "configs/data-randomised.ron no longer has '$split'" >&2; exit 1; }
train=${train/"$split"/"split: (train: 1.0, val: 0.0, test: 0.0)"}
if [ -n "${FOCAL_SCALE:-}" ]; then
  lens="training_focal_scale: Some((0.8, 1.0))"
  [[ $train == *"$lens"* ]] || { echo "configs/data-randomised.ron no longer has '$lens'" >&2; exit 1; }
  train=${train/"$lens"/"training_focal_scale: Some(($FOCAL_SCALE))"}
fi
printf '%s\n' "$train" > "$work/train.ron"
"$data" generate --config "$work/train.ron" --seed 1000 --samples "${SAMPLES:-40000}" \
    --out "$work/train" > "$out/generate.log"
"$data" generate --config configs/data-randomised.ron --out "$work/test" >> "$out/generate.log"
# eval --shifts' sets, the same bytes as trajhost's (held-out styles, farther camera, noise, ...).
"$data" shifts --config configs/data-randomised.ron --out "$work/shifts" > "$out/shifts.tsv"
evals=(--eval test="$work/test":test)
while IFS=$'\t' read -r name _ dir; do evals+=(--eval "$name=$dir:all"); done < "$out/shifts.tsv"
pids=()
for b in $backbones; do
  PYTHONUNBUFFERED=1 "$python" bench/python/quality_mirror.py --backbone "$b" --train "$work/train" \
      --minutes "$minutes" --device "${DEVICE:-cuda}" --background "${BACKGROUND:-subtract_median}" \
      "${evals[@]}" > "$out/$b.jsonl" 2> "$out/$b.err" &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
[ $failed -eq 0 ] || { echo "a run failed: see $out/*.err" >&2; exit 1; }
