#!/bin/sh
# Installs and starts a one-node Slurm cluster on this machine, from Debian's packages, so
# the end-to-end tests of runs on Slurm submit real jobs to a real `slurmctld`.
#
# What it sets up, and why:
# - munge (the key in /etc/munge/munge.key, `munged` as the munge user): Slurm's daemons
#   and commands authenticate every message with it.
# - /etc/slurm/slurm.conf for this host alone: one node named after `hostname -s`, its CPUs
#   and memory as `slurmd -C` finds them, reached on 127.0.0.1 so no DNS is needed; one
#   partition `debug` (the default, no time limit).
# - No cgroups anywhere: containers rarely let Slurm own a cgroup tree, so processes are
#   tracked by walking /proc (proctrack/linuxproc) and tasks are not confined (task/none).
#   No GRES, so no GPU lookups (and `--gpus` is refused: "Invalid generic resource").
# - No accounting (no slurmdbd, no database): `sacct` then errors, and a finished job is
#   only known to `scontrol show job` for MinJobAge (10 minutes) after it ends.
# - Fast turnaround for tests: the main and backfill schedulers run every second (a job
#   starts within one), and a job over its time limit gets no extra minutes
#   (OverTimeLimit=0) and 5 s between SIGTERM and SIGKILL (KillWait=5). slurmctld looks at
#   time limits only every 30 s or so: a `--time 0:01` job ends TIMEOUT 60 to 95 s in.
# - Jobs share cores (OverSubscribe=FORCE:8): the tests submit jobs side by side, and a
#   two-core CI machine would otherwise run two at a time and queue the rest for Resources.
# - `slurmctld` and `slurmd` are started directly as daemons (no systemd in containers);
#   they outlive this script. Logs: /var/log/slurm/slurmctld.log and slurmd.log.
#
# Idempotent: a second run with Slurm installed, the config unchanged and both daemons up
# does nothing but check. A changed config restarts the daemons.
# Needs root (apt-get, munge, slurmd). Prints one line on stdout when the node is up:
#   slurm: node <host> idle, partition debug
set -eu

conf=/etc/slurm/slurm.conf
logs=/var/log/slurm
spool=/var/lib/slurm
ctld_pid=/run/slurmctld.pid
slurmd_pid=/run/slurmd.pid
munge_key=/etc/munge/munge.key
# How long the node may take to come up, in seconds.
wait_s=${SLURM_LOCAL_WAIT:-30}

fail() {
    echo "slurm-local: $*" >&2
    exit 1
}

# The last lines of the given logs (Slurm's own by default), so a failure in CI says why.
show_logs() {
    [ "$#" -gt 0 ] || set -- "$logs/slurmctld.log" "$logs/slurmd.log"
    for f in "$@"; do
        if [ -s "$f" ]; then
            echo "--- the end of $f:" >&2
            tail -n 20 "$f" >&2
        fi
    done
}

# Whether the daemon NAME whose pid is in PIDFILE runs, its pid then in $pid (the pid's own
# name is checked, as a stale pid file may name someone else's process).
running() {
    pid=$(cat "$2" 2>/dev/null) || return 1
    [ -n "$pid" ] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) && [ "$comm" = "$1" ]
}

# Stops the daemon NAME whose pid is in PIDFILE, waiting up to 10 s for it to go.
stop() {
    running "$1" "$2" || return 0
    kill "$pid"
    i=0
    while running "$1" "$2"; do
        i=$((i + 1))
        [ "$i" -le 100 ] || fail "$1 (pid $pid) did not stop"
        sleep 0.1
    done
}

[ "$(id -u)" = 0 ] || fail "needs root (it installs packages and starts slurmd)"

# Packages, only when missing: apt-get update alone takes seconds.
if ! command -v sbatch >/dev/null 2>&1 || ! command -v slurmctld >/dev/null 2>&1 \
    || ! command -v slurmd >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
    echo "slurm-local: installing slurm-wlm and munge" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || fail "apt-get update failed"
    apt-get install -y -qq slurm-wlm munge >&2 || fail "apt-get install slurm-wlm munge failed"
fi
getent passwd munge >/dev/null || fail "no munge user (the munge package makes it)"

# Munge: a key only its user reads, and munged running as that user.
mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
if [ ! -s "$munge_key" ]; then
    if command -v mungekey >/dev/null 2>&1; then
        mungekey --create --keyfile="$munge_key"
    else
        dd if=/dev/urandom of="$munge_key" bs=1024 count=1 2>/dev/null
    fi
fi
chown munge:munge /etc/munge "$munge_key" /run/munge /var/lib/munge /var/log/munge
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0400 "$munge_key"
chmod 0755 /run/munge
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    munge_log=/var/log/munge/munged.log
    runuser -u munge -- munged || { show_logs "$munge_log"; fail "munged did not start"; }
    munge -n </dev/null | unmunge >/dev/null 2>&1 \
        || { show_logs "$munge_log"; fail "munge does not work"; }
fi

# Slurm's own user runs slurmctld when the packages made one; root otherwise.
if getent passwd slurm >/dev/null; then user=slurm; else user=root; fi

# This host's node line: `slurmd -C` prints `NodeName=h CPUs=.. Boards=.. ... RealMemory=..`.
host=$(hostname -s)
[ -n "$host" ] || fail "hostname -s printed nothing"
hw=$(slurmd -C | sed -n 's/^NodeName=[^ ]* //p')
[ -n "$hw" ] || fail "slurmd -C did not describe this machine"

mkdir -p /etc/slurm "$logs" "$spool/slurmctld" "$spool/slurmd"
chown "$user" "$logs" "$spool/slurmctld"
new=$conf.new.$$
cat >"$new" <<EOF
# Written by scripts/slurm-local.sh: a one-node test cluster, no cgroups, no accounting.
ClusterName=reagent-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=$user
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
SwitchType=switch/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
MinJobAge=600
KillWait=5
OverTimeLimit=0
InactiveLimit=0
ReturnToService=2
MailProg=/bin/true
StateSaveLocation=$spool/slurmctld
SlurmdSpoolDir=$spool/slurmd
SlurmctldPidFile=$ctld_pid
SlurmdPidFile=$slurmd_pid
SlurmctldLogFile=$logs/slurmctld.log
SlurmdLogFile=$logs/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$host NodeAddr=127.0.0.1 $hw State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:8
EOF
if cmp -s "$new" "$conf"; then
    rm -f "$new"
else
    mv "$new" "$conf"
    chmod 0644 "$conf"
    # The node's shape may have changed: both daemons read it only when they start.
    stop slurmd "$slurmd_pid"
    stop slurmctld "$ctld_pid"
fi

# Each daemon forks into the background and writes its pid file; one that exits at once
# (a bad config, a port in use) leaves none.
for daemon in slurmctld:"$ctld_pid" slurmd:"$slurmd_pid"; do
    name=${daemon%%:*}
    pidfile=${daemon#*:}
    running "$name" "$pidfile" && continue
    "$name" || { show_logs; fail "$name did not start"; }
    i=0
    until running "$name" "$pidfile"; do
        i=$((i + 1))
        [ "$i" -le 50 ] || { show_logs; fail "$name did not stay up"; }
        sleep 0.1
    done
done

# Wait for the node to take jobs. `*` after a state means slurmctld has not heard from
# slurmd (yet); a down or drained node that answers is resumed.
i=0
while :; do
    state=$(sinfo --noheader --nodes="$host" --format=%T 2>/dev/null || true)
    case $state in
    idle | mixed | allocated | completing) break ;;
    down | drained | draining) scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
    esac
    i=$((i + 1))
    if [ "$i" -gt $((wait_s * 5)) ]; then
        show_logs
        fail "node $host is not up after ${wait_s}s (sinfo says: ${state:-nothing})"
    fi
    sleep 0.2
done
echo "slurm: node $host $state, partition debug"
