"""Long-form speech with the shipped model: time per character and peak memory against text length, and
intelligibility across chunk boundaries.

    python benchmarks/bench_long_form.py [--chars 10000] [--steps 10] [--threads 1]

A page is built from the example sentences (`demo/examples/sentences.txt`, repeated) up to `--chars`
characters. After one warm-up call (the G2P's first load), it is spoken (1) the first sentences alone (60 chars), (2) a quarter of the page, (3) the whole page with
`speak_long_text`, each in a fresh subprocess so its peak resident memory (ru_maxrss) is its own. The whole
page is then transcribed in 30-second windows cut at chunk boundaries and compared with the WER of the same
sentences spoken one by one (the sum of their errors over the sum of their words).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PROMPT = REPO_ROOT / "examples" / "prompt.wav"


def page(chars: int) -> str:
    sentences = [line.strip() for line in (REPO_ROOT / "demo" / "examples" / "sentences.txt").read_text().splitlines() if line.strip()]
    text, index = "", 0
    while len(text) < chars:
        text += ("" if not text else " ") + sentences[index % len(sentences)]
        index += 1
    return text


def worker(chars: int, steps: int, threads: int, out: str) -> dict:
    import numpy as np
    import soundfile as sf

    from ns2_hf import NS2Pipeline, speak_long_text
    from ns2_hf.threads import apply_num_threads

    apply_num_threads(threads)
    pipe = NS2Pipeline.from_pretrained()
    text = page(chars)
    speak_long_text(pipe, "A warm-up call.", PROMPT, num_inference_steps=steps, progress=False)  # G2P and first-call costs
    started = time.perf_counter()
    output = speak_long_text(pipe, text, PROMPT, num_inference_steps=steps, progress=False)
    elapsed = time.perf_counter() - started
    sf.write(out, output.audio, output.sampling_rate)
    Path(out).with_suffix(".json").write_text(json.dumps({"chunks": [c.text for c in output.chunks], "starts": output.chunk_starts}))
    return {"chars": len(text), "chunks": len(output.chunks), "seconds": elapsed, "audio_seconds": len(output.audio) / output.sampling_rate,
            "ms_per_char": 1000 * elapsed / len(text), "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "finite": bool(np.isfinite(output.audio).all())}


def intelligibility(out: str, steps: int) -> dict:
    """WER of the joined page (ASR over windows of whole chunks) vs its sentences spoken alone."""
    import numpy as np
    import soundfile as sf
    import torch

    from ns2_hf import NS2Pipeline
    from ns2_hf.metrics import transcribe, word_error_rate

    audio, rate = sf.read(out, dtype="float32")
    layout = json.loads(Path(out).with_suffix(".json").read_text())
    starts, chunks = layout["starts"] + [len(audio)], layout["chunks"]
    hypotheses, references, first = [], [], 0
    for index in range(1, len(chunks) + 1):  # windows of whole chunks, at most 25 s
        if index == len(chunks) or starts[index + 1] - starts[first] > 25 * rate:
            hypotheses.append(transcribe(audio[starts[first] : starts[index]], rate))
            references.append(" ".join(chunks[first:index]))
            first = index
    joined = word_error_rate(hypotheses, references)
    pipe = NS2Pipeline.from_pretrained()
    pipe.set_progress_bar_config(disable=True)
    alone = [pipe(chunk, prompt_audio=PROMPT, num_inference_steps=steps, generator=torch.Generator().manual_seed(i)).audios[0]
             for i, chunk in enumerate(chunks)]
    separate = word_error_rate([transcribe(np.asarray(a), rate) for a in alone], chunks)
    return {"wer_joined": joined, "wer_sentences_alone": separate, "windows": len(hypotheses), "chunks": len(chunks)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chars", type=int, default=10000)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="long_form.wav")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--skip-wer", action="store_true", help="timing and memory only (the ASR part takes as long again)")
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.steps, args.threads, args.out)))
        return
    rows = []
    for chars in (60, args.chars // 4, args.chars):
        out = args.out if chars == args.chars else f"/tmp/long_form_{chars}.wav"
        command = [sys.executable, __file__, "--worker", str(chars), "--steps", str(args.steps), "--threads", str(args.threads), "--out", out]
        completed = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
        if completed.returncode:
            raise SystemExit(completed.stderr[-3000:])
        rows.append(json.loads(completed.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    single = rows[0]
    print(f"shipped model, {args.steps} steps, {args.threads} thread(s), load average {os.getloadavg()[0]:.1f}")
    print(f"{'chars':>7}{'chunks':>8}{'wall s':>9}{'audio s':>9}{'ms/char':>9}{'x single':>10}{'peak RSS MB':>13}")
    for row in rows:
        print(f"{row['chars']:>7}{row['chunks']:>8}{row['seconds']:>9.1f}{row['audio_seconds']:>9.1f}{row['ms_per_char']:>9.2f}"
              f"{row['ms_per_char'] / single['ms_per_char']:>10.2f}{row['peak_rss_MB']:>13.0f}")
    if not args.skip_wer:
        print(json.dumps(intelligibility(args.out, args.steps)))


if __name__ == "__main__":
    main()
