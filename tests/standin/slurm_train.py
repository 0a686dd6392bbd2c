"""A stand-in training job for the tests of runs on Slurm.

Prints a line per step and writes `{"step": N, "loss": X}` to $REAGENT_METRICS_FILE (NaN at
--nan-at, as Python's json writes it), sleeping --every seconds between steps, then exits
with --exit. SIGTERM is answered by printing a line and exiting 143, as a training script
that saves a checkpoint on the way out would.
"""

import argparse
import json
import os
import signal
import sys
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--every", type=float, default=0.2)
    parser.add_argument("--nan-at", type=int, default=0)
    parser.add_argument("--exit", type=int, default=0)
    args = parser.parse_args()

    def stopped(signum, frame):
        print(f"got signal {signum}, saving a checkpoint", flush=True)
        sys.exit(143)

    signal.signal(signal.SIGTERM, stopped)
    metrics = os.environ.get("REAGENT_METRICS_FILE")
    print(f"training on {os.uname().nodename} as run {os.environ.get('REAGENT_RUN_ID')}", flush=True)
    for step in range(1, args.steps + 1):
        loss = float("nan") if step == args.nan_at else 1.0 / step
        print(f"step {step} loss {loss}", flush=True)
        if metrics:
            with open(metrics, "a") as out:
                out.write(json.dumps({"step": step, "loss": loss}) + "\n")
        time.sleep(args.every)
    print("done", flush=True)
    sys.exit(args.exit)


if __name__ == "__main__":
    main()
