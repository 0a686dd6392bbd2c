#!/bin/sh
# A stand-in for Slurm's commands, for tests and the bench that need no cluster (or a
# broken one). Linked as sbatch, squeue, scontrol, scancel and sacct into a folder put first
# on the daemon's PATH; it acts on its name. Files next to the links steer it:
# - sbatch.hang: sbatch never answers (a controller that does not answer);
# - sbatch.refuse: sbatch fails, printing the file on stderr;
# - squeue.fail: squeue fails, printing the file on stderr;
# - squeue.calls: each squeue call appends a line to it (how the bench counts them).
# sbatch hands out ids made of its pid and the time; squeue lists every job asked for as
# PENDING (Priority), one line each; sacct says accounting is disabled, as on a cluster
# without slurmdbd; scancel does nothing.
set -eu
dir=$(dirname "$0")
case $(basename "$0") in
sbatch)
    [ -e "$dir/sbatch.hang" ] && exec sleep 600
    if [ -e "$dir/sbatch.refuse" ]; then
        cat "$dir/sbatch.refuse" >&2
        exit 1
    fi
    # Unique without shared state, as the daemon submits runs side by side.
    echo "$$$(date +%N)"
    ;;
squeue)
    [ -e "$dir/squeue.calls" ] && echo "$*" >>"$dir/squeue.calls"
    if [ -e "$dir/squeue.fail" ]; then
        cat "$dir/squeue.fail" >&2
        exit 1
    fi
    for arg in "$@"; do
        case $arg in
        --jobs=*) printf '%s\n' "${arg#--jobs=}" | tr ',' '\n' | sed 's/$/|PENDING|Priority/' ;;
        esac
    done
    ;;
scontrol)
    case $* in
    "show config") printf 'ClusterName = stub\nMaxArraySize = 1001\n' ;;
    *) echo "JobId=$4 JobName=x JobState=PENDING Reason=Priority ExitCode=0:0" ;;
    esac
    ;;
sacct)
    echo "Slurm accounting storage is disabled" >&2
    exit 1
    ;;
scancel) ;;
*)
    echo "slurm_stub.sh: linked as an unknown command $0" >&2
    exit 2
    ;;
esac
