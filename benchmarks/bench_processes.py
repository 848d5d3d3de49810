"""Training throughput with 1 and with N processes (data parallel on CPU, gloo), and the scaling efficiency.

    python benchmarks/bench_processes.py --dataset data/prepared [--script train_codec.py] [--config ...]
        [--processes 2] [--steps 12] [--repeats 2] [-- --key value ...]

Each run is `ACCELERATE_USE_CPU=true torchrun --nproc_per_node P training/<script>` (one thread per process)
in a fresh output folder; its throughput is the `train/frames_per_second` the script logs at the last step,
which counts steps 2..`--steps` (the first step, with its warm-up, is logged alone) and the frames of all
processes. Runs with 1 and with P processes alternate, `--repeats` times each; the medians are printed with
`efficiency = fps(P) / (P * fps(1))`. Extra arguments after `--` go to the training script (e.g.
`--codec runs/codec/best` for train_ns2.py). Per-process batches keep the recipe's `max_frames_per_batch`, so
P processes train on P times the frames per step.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def logged_frames_per_second(output_dir: Path) -> float:
    """The last `train/frames_per_second` in the run's TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = {path.parent for path in (output_dir / "tensorboard").rglob("events.out.tfevents.*")}
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    return accumulator.Scalars("train/frames_per_second")[-1].value


def run(processes: int, args, extra, folder: Path) -> float:
    output_dir = folder / f"run_{processes}_{len(list(folder.iterdir()))}"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
               str(REPO_ROOT / "training" / args.script), "--config", args.config, "--dataset", args.dataset,
               "--output_dir", str(output_dir), "--max_steps", str(args.steps), "--log_interval", str(args.steps),
               "--val_interval", "1000000", "--save_interval", "1000000", "--val_max_items", "1",
               "--val_log_items", "0", *extra]
    env = dict(os.environ, ACCELERATE_USE_CPU="true", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
               PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO_ROOT)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return logged_frames_per_second(output_dir)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="a prepared dataset folder")
    parser.add_argument("--script", default="train_codec.py", choices=["train_codec.py", "train_ns2.py"])
    parser.add_argument("--config", default=str(REPO_ROOT / "training" / "configs" / "codec_tiny.yaml"))
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2)
    args, extra = parser.parse_known_args()
    extra = [argument for argument in extra if argument != "--"]
    measured = {1: [], args.processes: []}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.repeats):
            for processes in measured:  # alternating, so a change in the machine's load hits both
                measured[processes].append(run(processes, args, extra, Path(folder)))
                print(f"{processes} process(es): {measured[processes][-1]:.0f} frames/s", flush=True)
    single, several = (statistics.median(measured[p]) for p in measured)
    print(f"{args.script}, {args.steps} steps, median of {args.repeats}: 1 process {single:.0f} frames/s, "
          f"{args.processes} processes {several:.0f} frames/s, scaling efficiency {several / (args.processes * single):.2f}")


if __name__ == "__main__":
    main()
