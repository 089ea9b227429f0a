#!/usr/bin/env bash
# Re-evaluate the headline bounce comparison (servo-arm-landing and none, training seeds 0-2) under the MuJoCo
# release installed now, from the committed checkpoints, with the sweep's exact evaluation arguments.
# Output: release_check/mujoco-<release>/<unit>/ (results.csv, results.json with the software versions).
# Run from this directory:  bash release_check.sh
set -euo pipefail
cd "$(dirname "$0")"
release=$(python -c "import mujoco; print(mujoco.__version__)")
out_root=release_check/mujoco-$release
export MBMETA_THREADS=1 OMP_NUM_THREADS=1 WANDB_MODE=offline
for unit in servo-arm-landing-seed0 servo-arm-landing-seed1 servo-arm-landing-seed2 none-seed0 none-seed1 none-seed2; do
    out=$out_root/$unit
    if [ -f "$out/results.json" ]; then echo "skip $unit (done)"; continue; fi
    # the committed evaluation's arguments, with only --out changed
    mapfile -t args < <(python - "$unit" "$out" <<'EOF'
import json, sys
unit, out = sys.argv[1], sys.argv[2]
args = json.load(open(f"results/{unit}/eval0/sweep.json"))["arguments"]
args[args.index("--out") + 1] = out
print("\n".join(args))
EOF
)
    echo "[$(date +%H:%M:%S)] $unit -> $out"
    mkdir -p "$out"
    python -m mbmeta "${args[@]}" > "$out.log" 2>&1
done
python - "$out_root" "$release" <<'EOF' | tee "$out_root/summary.md"
# per unit: successes here and in the committed evaluation; per side: the success rate over training seeds
import csv, sys
from pathlib import Path
from mbmeta.evaluation.statistics import estimate, verdict
root, release = Path(sys.argv[1]), sys.argv[2]
def successes(path):
    rows = list(csv.DictReader(open(path)))
    return [int(r["task_id"]) for r in rows if float(r["success"]) > 0.5], len(rows)
rates = {}
print(f"# Release check: MuJoCo {release} against the committed evaluations (MuJoCo 3, release not recorded)\n")
print("| evaluation | successes here | tasks | committed | tasks |\n|---|---:|---|---:|---|")
for unit in sorted(p.name for p in root.iterdir() if (p / "results.csv").is_file()):
    new, n = successes(root / unit / "results.csv")
    old, _ = successes(Path("results") / unit / "eval0" / "results.csv")
    print(f"| {unit} | {len(new)}/{n} | {new} | {len(old)}/{n} | {old} |")
    method, seed = unit.rsplit("-seed", 1)
    rates.setdefault(method, {})[int(seed)] = (len(new) / n, len(old) / n)
if {"servo-arm-landing", "none"} <= set(rates):
    seeds = sorted(set(rates["servo-arm-landing"]) & set(rates["none"]))
    print("\nSuccess rate of `servo-arm-landing` − `none`, paired by training seed:\n")
    for which, k in (("here", 0), ("committed", 1)):
        d = estimate([rates["servo-arm-landing"][s][k] - rates["none"][s][k] for s in seeds])
        print(f"- {which}: {d.mean:+.2f} ± {d.se:.2f}, 95 % interval [{d.low:+.2f}, {d.high:+.2f}], n = {d.n}: {verdict(d)}")
EOF
