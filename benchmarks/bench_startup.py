"""Start-up of `ns2-tts`: time to the first diffusion step, phase by phase, and one process speaking N lines
(`--text-file`) against N separate calls.

    python benchmarks/bench_startup.py [--runs 5] [--lines 20] [--steps 25] [--threads 1]

Each run is a fresh interpreter doing what `ns2-tts` does, with the CLI's own functions (`check_requests`,
`load_pipeline`, `speak_long_text`); the clock starts just before the process is launched, so interpreter
start-up counts. Phases: python start + `import ns2_hf.cli`; the argument checks (the prompt is decoded);
importing torch/transformers/diffusers and the model classes; loading the shipped model; the first call up to
the first denoiser step (text split and G2P, prompt trimmed and encoded, duration and pitch predictors);
the first step. Medians over `--runs`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PROMPT = REPO_ROOT / "examples" / "prompt.wav"
TEXT = "The birch canoe slid on the smooth planks."

CHILD = """
import time, sys, json
marks = {"launched": float(sys.argv[1])}
from ns2_hf import cli
marks["import ns2_hf.cli"] = time.time()
args = cli.build_parser().parse_args(sys.argv[2:])
cli.check_requests(args)
marks["argument checks"] = time.time()
from ns2_hf.pipelines.pipeline_ns2 import NS2Pipeline
from ns2_hf.pipelines.long_form import speak_long_text
marks["import torch/transformers/diffusers"] = time.time()
pipeline = cli.load_pipeline(args)
marks["load model"] = time.time()
denoise, steps = pipeline.model.denoise, []
def timed_denoise(*a, **k):
    if not steps:
        marks["text, prompt, encoders (to 1st step)"] = time.time()
    result = denoise(*a, **k)
    steps.append(time.time())
    return result
pipeline.model.denoise = timed_denoise
speak_long_text(pipeline, args.text, args.prompt, num_inference_steps=args.steps, progress=False)
marks["first step"] = steps[0]
marks["other steps, decode"] = time.time()
print(json.dumps(marks))
"""


def run_once(steps: int, threads: int, out: str) -> dict:
    launched = time.time()
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, repr(launched), "--text", TEXT, "--prompt", str(PROMPT), "--out", out,
         "--steps", str(steps), "--threads", str(threads)],
        capture_output=True, text=True, cwd=REPO_ROOT,
    )
    if completed.returncode:
        raise SystemExit(completed.stderr[-3000:])
    marks = json.loads(completed.stdout.strip().splitlines()[-1])
    names, phases, previous = list(marks), {}, marks["launched"]
    for name in names[1:]:
        phases[name] = marks[name] - previous
        previous = marks[name]
    phases["time to first step"] = marks["first step"] - marks["launched"]
    return phases


def batch_vs_separate(lines: int, steps: int, threads: int, folder: Path) -> dict:
    texts = [line.strip() for line in (REPO_ROOT / "demo" / "examples" / "sentences.txt").read_text().splitlines() if line.strip()]
    texts = [texts[index % len(texts)] for index in range(lines)]
    common = ["--prompt", str(PROMPT), "--steps", str(steps), "--threads", str(threads)]
    started = time.perf_counter()
    for index, text in enumerate(texts):
        subprocess.run([sys.executable, "-m", "ns2_hf.cli", "--text", text, "--out", str(folder / f"alone_{index}.wav"), *common],
                       check=True, capture_output=True, cwd=REPO_ROOT)
    separate = time.perf_counter() - started
    (folder / "lines.txt").write_text("\n".join(texts) + "\n")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ns2_hf.cli", "--text-file", str(folder / "lines.txt"), "--out-dir", str(folder / "batch"), *common],
                   check=True, capture_output=True, cwd=REPO_ROOT)
    batch = time.perf_counter() - started
    return {"lines": lines, "separate_s": separate, "one_process_s": batch, "factor": separate / batch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lines", type=int, default=20, help="lines for the batch comparison (0 = skip it)")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        runs = [run_once(args.steps, args.threads, str(Path(folder) / "out.wav")) for _ in range(args.runs)]
        print(f"ns2-tts start-up, shipped model, {args.steps} steps, {args.threads} thread(s), median (min–max) of {args.runs} fresh processes")
        for name in runs[0]:
            values = [run[name] for run in runs]
            print(f"  {name:<40}{statistics.median(values):7.2f} s  ({min(values):.2f}–{max(values):.2f})")
        if args.lines:
            print(json.dumps(batch_vs_separate(args.lines, args.steps, args.threads, Path(folder))))


if __name__ == "__main__":
    main()
