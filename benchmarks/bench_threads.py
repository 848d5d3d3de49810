"""Threads: the shipped model's speed with 1 and 2 torch threads, on the machine as it is ("idle") and with
a concurrent CPU load — the case where spinning OpenMP threads collapse.

    python benchmarks/bench_threads.py [--steps 25] [--repeats 3] [--load-procs 2] [--timeout 300]

"loaded" starts `--load-procs` busy Python processes (one per core by default) for the measurement.
Each setting runs in a fresh subprocess: load the shipped pipeline, one warm-up call, then the median wall
time of `--repeats` calls speaking one sentence at `--steps` steps. A setting that has not finished within
`--timeout` seconds is reported as such. "default" is what `ns2-tts`, the demo and `evaluate_tts.py` use
with neither `--threads` nor `NS2_NUM_THREADS` (`ns2_hf.threads.DEFAULT_NUM_THREADS`). "1" and "2" are set
the way `ns2-tts --threads N` sets them (`apply_num_threads` before torch is imported, so waiting OpenMP
threads sleep: `OMP_WAIT_POLICY=PASSIVE`); "2-spin" imports torch first, as a program that sets only
`torch.set_num_threads(2)` does, so its waiting threads spin (OpenMP's default policy).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TEXT = "The birch canoe slid on the smooth planks."
SETTINGS = ("default", "1", "2", "2-spin")

CHILD = """
import json, sys, time, statistics
if sys.argv[5] == "spin":
    import torch
from ns2_hf import NS2Pipeline
from ns2_hf.threads import apply_num_threads
threads = apply_num_threads(None if sys.argv[1] == "default" else int(sys.argv[1]))
import torch
pipe = NS2Pipeline.from_pretrained(); pipe.set_progress_bar_config(disable=True)
call = lambda: pipe(sys.argv[2], prompt_audio="examples/prompt.wav", num_inference_steps=int(sys.argv[3]), generator=torch.Generator().manual_seed(0))
audio = call().audios[0]
walls = []
for _ in range(int(sys.argv[4])):
    start = time.perf_counter(); call(); walls.append(time.perf_counter() - start)
print(json.dumps({"threads": threads, "seconds": statistics.median(walls), "audio_seconds": len(audio) / pipe.sampling_rate}))
"""


def burn() -> None:
    while True:
        pass


def measure(setting: str, steps: int, repeats: int, timeout: float) -> dict:
    env = {key: value for key, value in os.environ.items() if key not in ("OMP_NUM_THREADS", "NS2_NUM_THREADS", "OMP_WAIT_POLICY")}
    threads, _, policy = setting.partition("-")
    try:
        completed = subprocess.run([sys.executable, "-c", CHILD, threads, TEXT, str(steps), str(repeats), policy or "default"], capture_output=True,
                                   text=True, cwd=REPO_ROOT, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"seconds": None}
    if completed.returncode:
        raise SystemExit(completed.stderr[-3000:])
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--load-procs", type=int, default=os.cpu_count())
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    results = {}
    for condition in ("idle", "loaded"):
        burners = [multiprocessing.Process(target=burn, daemon=True) for _ in range(args.load_procs if condition == "loaded" else 0)]
        for burner in burners:
            burner.start()
        try:
            for setting in SETTINGS:
                results[condition, setting] = measure(setting, args.steps, args.repeats, args.timeout)
                print(condition, setting, json.dumps(results[condition, setting]), flush=True)
        finally:
            for burner in burners:
                burner.terminate()
    print(f"one sentence, shipped model, {args.steps} steps, median of {args.repeats} (s of wall time); "
          f"loaded = {args.load_procs} busy processes on {os.cpu_count()} cores; load average at start {os.getloadavg()[0]:.1f}")
    fmt = lambda value: f">{args.timeout:.0f}" if value is None else f"{value:.2f}"
    print(f"{'threads':<10}{'idle s':>10}{'loaded s':>10}{'loaded/idle':>13}")
    for setting in SETTINGS:
        idle, loaded = results["idle", setting]["seconds"], results["loaded", setting]["seconds"]
        ratio = "—" if idle is None or loaded is None else f"{loaded / idle:.2f}"
        print(f"{setting:<10}{fmt(idle):>10}{fmt(loaded):>10}{ratio:>13}")


if __name__ == "__main__":
    main()
