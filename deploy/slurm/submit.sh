#!/bin/bash
# Submits a minigpt sweep to Slurm: an array of N shard tasks (at most MAX_RUNNING at once),
# then a merge job that waits for all of them (afterok). Prints both job ids.
#
#   deploy/slurm/submit.sh CONFIG N
#
# Environment:
#   OUT=DIR            output root on shared storage [default: ./sweep-<config name>]
#   MAX_RUNNING=M      array tasks running at once [default: N]
#   MODEL_REPO=REPO    a Hugging Face repo to download into $HF_HOME first (the tasks then run
#                      offline from that cache; put HF_HOME on shared storage)
#   MINIGPT=PATH       the minigpt binary, as the nodes see it [default: minigpt on PATH]
#   SBATCH_ARGS="..."  more sbatch options for both jobs (partition, account, time limit)
set -euo pipefail
if [ $# -ne 2 ] || ! [[ $2 =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 CONFIG N   (N shards, N >= 1)" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
config=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[ -f "$config" ] || { echo "$0: no config at $1" >&2; exit 2; }
n=$2
max=${MAX_RUNNING:-$n}
out=${OUT:-$PWD/sweep-$(basename "$config" .toml)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
export MINIGPT=${MINIGPT:-minigpt}
if [ -n "${MODEL_REPO:-}" ]; then
    "$MINIGPT" download "$MODEL_REPO"
fi
# shellcheck disable=SC2086
array=$(sbatch --parsable ${SBATCH_ARGS:-} --array="1-$n%$max" --chdir="$out" \
    --export="ALL,MINIGPT=$MINIGPT,MINIGPT_CONFIG=$config,MINIGPT_OUT=$out" \
    "$here/sweep.sbatch")
array=${array%%;*}
# shellcheck disable=SC2086
merge=$(sbatch --parsable ${SBATCH_ARGS:-} --dependency="afterok:$array" --chdir="$out" \
    --export="ALL,MINIGPT=$MINIGPT,MINIGPT_OUT=$out" "$here/merge.sbatch")
merge=${merge%%;*}
echo "array job $array ($n shards, at most $max at once) -> $out/shard-K-of-$n"
echo "merge job $merge (after the array succeeds) -> $out/merged"
# A task cancelled and then requeued by hand stays failed in the array's afterok: re-arm the
# merge on the tasks one by one (a requeue by Slurm itself, --requeue on a node failure or a
# preemption, needs nothing).
echo "after 'scontrol requeue ${array}_K' of a cancelled task, re-arm the merge with:"
echo "  scontrol update JobId=$merge Dependency=afterok:$(seq -s: -f "${array}_%g" 1 "$n")"
