#!/bin/bash
# Runs the committed Slurm recipes (deploy/slurm/) on a real single-node Slurm on this machine:
#
#   1. installs Debian's slurm-wlm and munge if they are missing, writes a single-node
#      slurm.conf in a temp dir (the node line from `slurmd -C`, select/cons_tres,
#      proctrack/pgid), and starts munged, slurmctld and slurmd;
#   2. submits a 4-task array of a small sweep with deploy/slurm/submit.sh (at most 2 tasks at
#      once), and its merge job;
#   3. kills one task mid-run (`scancel --signal=KILL`) once it has written rows, and requeues
#      it (`scontrol requeue`): the rerun resumes its folder, keeping the rows written;
#   4. waits for the merge job, and checks that the merged run equals an unsharded run of the
#      same config in every non-timing column;
#   5. stops the daemons it started (also on failure).
#
#   scripts/slurm_check.sh [MINIGPT]     (default: target/release/minigpt; needs root for apt
#                                         and the daemons)
#
# Prints job ids, states, the requeue and the equality check; exits non-zero on any failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
minigpt=$(realpath "${1:-$root/target/release/minigpt}")
[ -x "$minigpt" ] || { echo "slurm_check: no minigpt binary at $minigpt (cargo build --release)" >&2; exit 2; }
t0=$(date +%s)
say() { printf '[%3ds] %s\n' $(($(date +%s) - t0)) "$*"; }
# One field of `scontrol show job` (empty when the job or the field is not there).
jobfield() { scontrol show job "$1" 2>/dev/null | grep -o "$2=[^ ]*" | head -1 | cut -d= -f2- || true; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    say "installing slurm-wlm and munge (Debian packages)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null 2>&1 || {
        DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null
    }
fi

work=$(mktemp -d /tmp/minigpt-slurm.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    local rc=$?
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -n "${munge_pid:-}" ] && kill "$munge_pid" 2>/dev/null || true
    sleep 1
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    if [ $rc -ne 0 ]; then
        echo "--- slurmctld.log (tail)"; tail -20 "$work/slurmctld.log" 2>/dev/null || true
        echo "--- slurmd.log (tail)"; tail -20 "$work/slurmd.log" 2>/dev/null || true
        for f in "$work"/out/minigpt-*.out; do [ -f "$f" ] && { echo "--- $f"; tail -5 "$f"; }; done
        echo "slurm_check: FAILED (files kept in $work)"
    else
        rm -rf "$work"
    fi
    exit $rc
}
trap cleanup EXIT

# munge: a key of our own and a private socket, so nothing of the system's is touched.
mkdir -p "$work/munge"
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 700 "$work/munge"; chmod 400 "$work/munge/munge.key"
munged --force --key-file="$work/munge/munge.key" --socket="$work/munge/socket" \
    --pid-file="$work/munge/munged.pid" --log-file="$work/munge/munged.log" \
    --seed-file="$work/munge/seed"
munge_pid=$(cat "$work/munge/munged.pid")

host=$(hostname -s)
node=$(slurmd -C | head -1)
cat > "$work/slurm.conf" <<EOF
ClusterName=minigpt-check
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$work/munge/socket
CredType=cred/munge
SlurmctldPort=16817
SlurmdPort=16818
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
ReturnToService=2
JobRequeue=1
MinJobAge=600
MpiDefault=none
$node
PartitionName=check Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
mkdir -p "$work/state" "$work/spool"
export SLURM_CONF=$work/slurm.conf
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
sleep 1
pids+=("$(cat "$work/slurmctld.pid")" "$(cat "$work/slurmd.pid")")
say "munged, slurmctld and slurmd started ($node)"
for _ in $(seq 60); do
    state=$(sinfo -h -o %T 2>/dev/null | head -1 || true)
    [ "$state" = idle ] && break
    sleep 1
done
[ "$state" = idle ] || { echo "slurm_check: the node is '$state', not idle" >&2; exit 1; }
say "node $host idle"

# A small sweep on the built-in model: 4 prompts x 2 strategies x 3 samples = 24 rows, one row
# per batch so that a task writes rows while it runs and can be killed between them.
cfg=$work/sweep.toml
cat > "$cfg" <<EOF
[experiment]
name = "slurm-check"
seed = 7
samples = 3
max_new_tokens = 1200
batch_size = 1
context = "shift"

[prompts]
items = ["ROMEO:", "JULIET:", "First Citizen:", "KING HENRY:"]

[sweep]
temperatures = [0.9]
strategies = ["top_k_40", "top_p_0.9"]
EOF

out=$work/out
say "submitting deploy/slurm/submit.sh (4 shards, at most 2 running)"
submitted=$(OUT=$out MAX_RUNNING=2 MINIGPT=$minigpt "$root/deploy/slurm/submit.sh" "$cfg" 4)
echo "$submitted"
array=$(echo "$submitted" | sed -n 's/^array job \([0-9]*\).*/\1/p')
merge=$(echo "$submitted" | sed -n 's/^merge job \([0-9]*\).*/\1/p')
[ -n "$array" ] && [ -n "$merge" ] || { echo "slurm_check: submit.sh printed no job ids" >&2; exit 1; }

# Task 2 (shard 2 of 4): kill it once its folder holds a row, then requeue it.
victim=${array}_2
# Rows in the folder (records, not lines: a text may hold line breaks).
rows_of() {
    python3 -c 'import csv, sys
try:
    print(sum(1 for _ in csv.DictReader(open(sys.argv[1], newline=""))))
except (FileNotFoundError, csv.Error):
    print(0)' "$out/shard-2-of-4/generations.csv"
}
for _ in $(seq 240); do
    [ "$(rows_of)" -ge 1 ] && break
    sleep 0.25
done
before=$(rows_of)
[ "$before" -ge 1 ] || { echo "slurm_check: task $victim wrote no row in 60 s" >&2; squeue; exit 1; }
say "task $victim has written $before of 6 rows: scancel --signal=KILL $victim"
scancel --signal=KILL "$victim"
for _ in $(seq 60); do
    st=$(jobfield "$victim" JobState)
    case "$st" in FAILED|CANCELLED|COMPLETED|NODE_FAIL) break ;; esac
    sleep 0.5
done
say "task $victim is $st after the kill"
[ "$st" != COMPLETED ] || { echo "slurm_check: the task finished before the kill reached it" >&2; exit 1; }
scontrol requeue "$victim"
say "scontrol requeue $victim: $(jobfield "$victim" JobState), eligible at $(jobfield "$victim" EligibleTime)"
# Slurm holds a requeued job back for a couple of minutes (its EligibleTime); release it now.
scontrol update JobId="$victim" StartTime=now
# The kill ended the task unsuccessfully, which settles the merge job's afterok dependency on
# the array as never satisfied (Slurm keeps an array's failure even when the task is requeued):
# re-arm it on the array's tasks one by one, so the merge runs once every task, the requeued
# one included, has succeeded.
tasks=$(seq -s: -f "${array}_%g" 1 4)
say "merge job $merge: $(jobfield "$merge" JobState), reason $(jobfield "$merge" Reason), dependency $(jobfield "$merge" Dependency)"
scontrol update JobId="$merge" Dependency="afterok:$tasks"
say "re-armed: scontrol update JobId=$merge Dependency=afterok:$tasks -> $(jobfield "$merge" Dependency)"

# The merge job runs once every task has succeeded.
for _ in $(seq 600); do
    mst=$(jobfield "$merge" JobState)
    case "$mst" in COMPLETED|FAILED|CANCELLED|TIMEOUT) break ;; esac
    sleep 0.5
done
say "merge job $merge: $mst"
for i in 1 2 3 4; do
    echo "  task ${array}_$i: $(jobfield "${array}_$i" JobState), restarts $(jobfield "${array}_$i" Restarts)"
done
[ "$mst" = COMPLETED ] || { echo "slurm_check: the merge job ended $mst" >&2; cat "$out"/minigpt-merge-*.out >&2 || true; exit 1; }
log=$(ls "$out"/minigpt-sweep-"${array}"_2.out)
resumed=$(grep -o '[0-9]* generated now in [0-9]* model batches, [0-9]* already there' "$log" | tail -1)
say "requeued task's last line: $resumed"
kept=$(echo "$resumed" | sed -n 's/.* \([0-9]*\) already there/\1/p')
[ "${kept:-0}" -ge "$before" ] || { echo "slurm_check: the requeued task did not resume ($resumed)" >&2; exit 1; }
[ -f "$out/merged/complete.json" ] || { echo "slurm_check: the merged folder has no complete.json" >&2; exit 1; }

# The same config unsharded, outside Slurm: every non-timing column must match.
say "an unsharded run of the same config, for the comparison"
"$minigpt" run --config "$cfg" --out "$work/whole" 2>/dev/null
python3 - "$out/merged/generations.csv" "$work/whole/generations.csv" <<'PY'
import csv, sys
timing = {"seconds", "tokens_per_s"}
def rows(p):
    with open(p, newline="") as f:
        r = list(csv.DictReader(f))
    return [{k: v for k, v in row.items() if k not in timing} for row in r]
merged, whole = rows(sys.argv[1]), rows(sys.argv[2])
assert len(merged) == len(whole), (len(merged), len(whole))
bad = [i for i, (a, b) in enumerate(zip(merged, whole)) if a != b]
assert not bad, f"rows differ: {bad[:5]}"
cols = len(merged[0])
print(f"equality: merged == unsharded: {len(merged)} rows x {cols} non-timing columns")
PY
say "slurm_check: OK"
