"""Do few-step drafts choose among candidates as their full samples do? (`NS2Pipeline(candidate_steps=K)`)

    python benchmarks/candidate_drafts.py --test-list LIST.jsonl [--model pretrained/ns2-tiny-en] [--seeds 0 1 2]
                                          [--steps 50] [--draft_steps 10 5] [--num_candidates 3] [--out results.jsonl]

For each row of an `evaluate_tts.py` test list and each seed, the N candidates the pipeline would draw
(`num_waveforms_per_prompt=N` from `torch.Generator().manual_seed(seed)`: the same noises as `num_candidates=N`)
are sampled with `--steps` and with each `--draft_steps`, every output is scored by the folder's aligner
(`NS2AlignerModel.text_mismatch`, what `best_candidates` minimises), and the full samples are transcribed by the
evaluation's ASR (`ns2_hf.metrics.asr`, Whisper tiny.en). Printed per step count: the WER of the candidate that
count's scores choose (its *full* sample: what the pipeline outputs), how often it is the one the full samples'
scores choose, and the time of sampling and decoding the N candidates; beside them one take (candidate 0), the
candidates' mean and the best candidate (an oracle). With `--steps 50` and the release, "full" reproduces
`evaluate_tts.py --num_candidates 3 --candidate_steps 50`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def study(model: str, test_list: Path, seeds, steps: int, draft_steps, num_candidates: int, out) -> list:
    import torch

    from ns2_hf import NS2Pipeline
    from ns2_hf.alignment.modeling_aligner import AlignmentError
    from ns2_hf.metrics.asr import transcribe, word_error_rate

    pipe = NS2Pipeline.from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    pipe.check_aligner("scoring candidates")
    rows = [json.loads(line) for line in test_list.read_text().splitlines() if line.strip()]
    runs = []
    for row in rows:
        voice = pipe.encode_voice(str(test_list.parent / row["prompt_audio"]))
        phoneme_ids = pipe.encode_text([row["text"]])[0]
        for seed in seeds:
            run = {"id": row["id"], "seed": seed}
            for count in [steps, *draft_steps]:
                start = time.perf_counter()
                audios = pipe(row["text"], voice=voice, num_waveforms_per_prompt=num_candidates, num_candidates=1,
                              num_inference_steps=count, generator=torch.Generator().manual_seed(seed)).audios
                seconds = time.perf_counter() - start
                try:
                    scores = [pipe.aligner.text_mismatch(phoneme_ids, torch.from_numpy(audio)) for audio in audios]
                except AlignmentError:  # too short to score: the pipeline keeps the first candidate
                    scores = [0.0] * num_candidates
                run[str(count)] = {"scores": scores, "seconds": seconds}
                if count == steps:
                    run["wer"] = [word_error_rate(transcribe(audio, pipe.sampling_rate), row["text"]) for audio in audios]
            runs.append(run)
            if out is not None:
                with open(out, "a") as handle:
                    handle.write(json.dumps(run) + "\n")
    return runs


def report(runs: list, steps: int, draft_steps) -> None:
    print(f"{len(runs)} runs: one take WER {np.mean([run['wer'][0] for run in runs]):.3f}, candidates' mean "
          f"{np.mean([np.mean(run['wer']) for run in runs]):.3f}, best candidate {np.mean([min(run['wer']) for run in runs]):.3f}")
    full_choice = [int(np.argmin(run[str(steps)]["scores"])) for run in runs]
    for count in [steps, *draft_steps]:
        choice = [int(np.argmin(run[str(count)]["scores"])) for run in runs]
        wer = np.mean([run["wer"][index] for run, index in zip(runs, choice)])
        agreement = np.mean([a == b for a, b in zip(choice, full_choice)])
        seconds = np.median([run[str(count)]["seconds"] for run in runs])
        print(f"  chosen on {count:>3} steps: WER {wer:.3f}, same choice as on {steps} steps {agreement:.0%}, "
              f"{len(runs[0]['wer'])} candidates sampled and decoded in {seconds:.2f} s (median)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="pretrained/ns2-tiny-en")
    parser.add_argument("--test-list", "--test_list", dest="test_list", type=Path, required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=50, help="the full run's solver steps")
    parser.add_argument("--draft_steps", nargs="+", type=int, default=[10, 5])
    parser.add_argument("--num_candidates", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: ns2_hf.threads' default, 1)")
    parser.add_argument("--out", type=Path, default=None, help="append each run's scores and WERs here (JSON lines)")
    args = parser.parse_args()
    import torch

    from ns2_hf.threads import resolve_num_threads

    torch.set_num_threads(resolve_num_threads(args.threads))
    runs = study(args.model, args.test_list, args.seeds, args.steps, args.draft_steps, args.num_candidates, args.out)
    print(f"{args.test_list}, {args.model}, seeds {args.seeds}:")
    report(runs, args.steps, args.draft_steps)


if __name__ == "__main__":
    main()
