#!/usr/bin/env bash
# Reproduce the measurements of docs/privacy-audits.md (about 40 min on a loaded 2-core CPU).
# Trains the MNIST Dirichlet(0.5) federations of this folder, audits each, and prints the
# gradient-inversion table. Run directories go to runs/privacy-audit/<config>/<name>/.
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1
OUT=runs/privacy-audit
CONFIGS=(mnist_fedavg mnist_dp_fedavg_z4 mnist_dp_fedavg_z1 mnist_ccpgd mnist_dpsgd_eps8
         mnist_small_fedavg mnist_small_dp_fedavg_z4 mnist_small_dpsgd_eps8)
for c in "${CONFIGS[@]}"; do
  [ -f "$OUT/$c/suite.json" ] || nice -n 10 .venv/bin/medsilo simulate \
    "scripts/privacy_audit/$c.yaml" --out "$OUT/$c" --no-progress
done
run_dir() { ls -d "$OUT/$1"/audit-mnist-*/ | head -1; }
# full audit (inversion of 8 single images + membership) on FedAvg and central DP-FedAvg
for c in mnist_fedavg mnist_dp_fedavg_z4; do
  nice -n 10 .venv/bin/medsilo audit privacy "$(run_dir "$c")" --no-progress \
    --images 8 --batch-size 1 --iterations 400 --members 1000 --shadows 8 --shadow-epochs 10
done
# membership inference on the others
for c in mnist_dp_fedavg_z1 mnist_ccpgd mnist_dpsgd_eps8 mnist_small_fedavg \
         mnist_small_dp_fedavg_z4 mnist_small_dpsgd_eps8; do
  nice -n 10 .venv/bin/medsilo audit privacy "$(run_dir "$c")" --no-progress \
    --attack membership --members 1000 --shadows 8 --shadow-epochs 10
done
# inversion PSNR side by side: no defence, central/local DP-FedAvg, DP-SGD, CC-PGD, top-k
nice -n 10 .venv/bin/python scripts/privacy_audit/inversion_table.py --images 4 --iterations 300
