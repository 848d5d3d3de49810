"""Few-step sampling on the shipped model: Euler (NS2Scheduler) against DPM-Solver++(2M), side by side.

    python benchmarks/bench_solvers.py [--model ns2-tiny-en] [--temperatures 25 1.44] [--euler-steps 10 25 50]
        [--dpm-steps 6 8 10] [--items 6] [--seed 0] [--threads 1] [--json out.json]

For each temperature τ and each item (text + a prompt of its speaker, seed fixed per item) the 150-step Euler
output is the reference; every other solver runs with the same voice, durations and initial noise, and is
scored by its log-mel L1 to the reference (`multi_resolution_mel_distance`), by the ASR word error rate of its
output (Whisper tiny.en, `ns2_hf.metrics`) and by its real-time factor (pipeline wall time / audio seconds, voice
encoded beforehand). Solvers alternate within each item, so load on the machine hits them alike. The first six
items are the three held-out test sentences of `tests/test_shipped_model.py` and three more sentences (a solver is
judged by how close it gets to the reference, not by generalisation); `--items 16` adds ten corpus sentences,
since one word in six sentences moves the WER by 0.02.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ITEMS = [  # (text, prompt utterance of the same speaker)
    ("Today it is drastically different, because of the social milieu.", "fes_kal_0005"),
    ("In person, they are like enormous hooved rats.", "flite_slt_0040"),
    ("We learn from history that we do not learn from history.", "kok_mix5_0012"),
    ("The birch canoe slid on the smooth planks.", "kok_alpha_0065"),
    ("Glue the sheet to the dark blue background.", "flite_slt_0001"),
    ("It is easy to tell the depth of a well.", "fes_kal_0010"),
    # ten more corpus sentences, each prompted by another utterance of its speaker, for a steadier WER (--items 16)
    ("You will find a question of mine.", "fes_ked_0028"),
    ("You have a strong desire for a home and your family interests come first.", "flite_awb_0046"),
    ("Writing about music is like dancing about architecture.", "flite_rms_0072"),
    ("A violent man will die a violent death.", "flite_slt_0016"),
    ("Breakfast in London, dinner in New York, luggage in Brazil.", "kok_alpha_0003"),
    ("Whenever I feel like exercise, I lie down until the feeling passes.", "kok_gongitsune_0036"),
    ("I never deny, I never contradict.", "kok_kumo_0067"),
    ("Proper control of exclamation points can add new meaning to your life!", "kok_mix2_0041"),
    ("Defeat is worse than death because you have to live with defeat.", "kok_mix4_0072"),
    ("It lets people read all the replies without annoying newsreaders getting in the way.", "piper_joe_0011"),
]
CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "ns2-offline-en"
REFERENCE_STEPS = 150


def build_solvers(pipe, euler_steps, dpm_steps):
    """`[(name, scheduler, steps)]`, the 150-step Euler reference first; all from the pipeline's scheduler config."""
    from ns2_hf.schedulers import NS2DPMSolverMultistepScheduler, NS2Scheduler

    euler = NS2Scheduler.from_config(pipe.scheduler.config, solver="ode")
    dpm = NS2DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    return (
        [("euler", euler, REFERENCE_STEPS)]
        + [("euler", euler, steps) for steps in euler_steps]
        + [("dpm++2m", dpm, steps) for steps in dpm_steps]
    )


def run(args) -> list:
    import numpy as np
    import soundfile as sf
    import torch

    from ns2_hf import NS2Pipeline
    from ns2_hf.metrics import multi_resolution_mel_distance, transcribe, word_error_rate

    torch.set_num_threads(args.threads)
    pipe = NS2Pipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    solvers = build_solvers(pipe, args.euler_steps, args.dpm_steps)
    items = ITEMS[: args.items]
    voices = [pipe.encode_voice(*sf.read(CORPUS / "audio" / f"{prompt}.flac", dtype="float32")) for _, prompt in items]
    rows = []
    for temperature in args.temperatures:
        results = {(name, steps): {"mel": [], "seconds": 0.0, "audio_seconds": 0.0, "transcripts": []}
                   for name, _, steps in solvers}
        for index, ((text, _), voice) in enumerate(zip(items, voices)):
            reference = durations = None
            for name, scheduler, steps in solvers:
                pipe.scheduler = scheduler
                start = time.perf_counter()
                output = pipe(text, voice=voice, num_inference_steps=steps, temperature=temperature,
                              generator=torch.Generator().manual_seed(args.seed + index), durations=durations)
                elapsed = time.perf_counter() - start
                audio = output.audios[0]
                if reference is None:
                    reference, durations = audio, output.durations
                result = results[(name, steps)]
                result["mel"].append(multi_resolution_mel_distance(audio, reference, pipe.sampling_rate))
                result["seconds"] += elapsed
                result["audio_seconds"] += len(audio) / pipe.sampling_rate
                result["transcripts"].append(transcribe(audio, pipe.sampling_rate))
        texts = [text for text, _ in items]
        for name, _, steps in solvers:
            result = results[(name, steps)]
            rows.append({
                "temperature": temperature, "solver": name, "nfe": steps,
                "mel_l1_to_euler150": float(np.mean(result["mel"])),
                "wer": word_error_rate(result["transcripts"], texts),
                "rtf": result["seconds"] / result["audio_seconds"],
            })
    return rows


def format_rows(rows) -> str:
    lines = ["| τ | solver | NFE | log-mel L1 to Euler-150 ↓ | WER ↓ | RTF ↓ |", "|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['temperature']:g} | {row['solver']} | {row['nfe']} | {row['mel_l1_to_euler150']:.3f} | "
                     f"{row['wer']:.3f} | {row['rtf']:.3f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="pipeline folder (default: the shipped model)")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[25.0, 1.44])
    parser.add_argument("--euler-steps", type=int, nargs="*", default=[10, 25, 50])
    parser.add_argument("--dpm-steps", type=int, nargs="*", default=[6, 8, 10])
    parser.add_argument("--items", type=int, default=6, choices=range(1, len(ITEMS) + 1))
    parser.add_argument("--seed", type=int, default=0, help="item i draws its noise with seed + i")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    rows = run(args)
    print(format_rows(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
