#!/usr/bin/env bash
# Installs the real queues tests/test_queues.py runs against: task-spooler, and Slurm
# (slurmctld + slurmd + clients). Nothing is configured or started here: the Slurm test starts
# a private one-node cluster with its own slurm.conf, ports and auth/none, so no munge key or
# systemd is needed. Idempotent; returns at once when everything is already installed.
set -euo pipefail

need=()
command -v tsp >/dev/null 2>&1 || need+=(task-spooler)
for bin in slurmctld slurmd sbatch squeue scontrol; do
    if ! command -v "$bin" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$bin" ]; then
        need+=(slurm-wlm)
        break
    fi
done
[ ${#need[@]} -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# No recommends: they pull in docs, mail and database servers the tests never use.
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"
