"""Evaluate NS2 zero-shot TTS (or a codec) with the metrics of `ns2_hf.metrics`.

Three modes:

  # 1. build a test list from the corpus: for each chosen speaker, n target utterances, each with a
  #    prompt = another utterance of the same speaker (paths relative to the list file)
  python training/evaluate_tts.py --make-test-list ../shared/corpus/ns2-offline-en --speakers all --n 2 \
      --test-list eval/test_list.jsonl

  # 2. synthesize every item with a pipeline and score it next to the ground truth
  python training/evaluate_tts.py --model pretrained/ns2-tiny-en --test-list eval/test_list.jsonl --out_dir eval/out
  #    (--ground-truth-only scores just the recordings: the reference row)

  # 3. codec reconstruction quality over a folder of audio, or over a test list's recordings (which
  #    adds the ASR WER of the reconstruction: the ceiling for a TTS model built on this codec)
  python training/evaluate_tts.py --codec path/to/codec --audio_dir some/wavs --out_dir eval/codec
  python training/evaluate_tts.py --codec path/to/codec --test-list eval/test_list.jsonl --out_dir eval/codec

A test list is CSV or JSONL with columns `text`, `prompt_audio`, optional `audio` (ground truth),
`speaker` and `id`. Writes `per_utterance.json`, `per_utterance.csv` and `summary.json` to
`--out_dir` (and the synthesized `audio/<id>.wav`), and prints a table of mean ± std per metric
with a ground-truth column next to the model's.

Whether the voice follows the prompt shows in two columns per row and in the summary: the output's
mean f0 against the prompt's (`f0_prompt_ratio`, `f0_prompt_diff_hz`, and `f0_prompt_median_ratio` with medians,
which the octave jumps of pitch tracks on 8 kHz recordings do not move; "prosody" metric) and the
similarity to the prompt next to its floor, the similarity to another speaker's recording
(`sim_prompt` vs `sim_other`; "speaker_similarity"). Real recorded prompts: `python
scripts/fetch_real_speech.py` writes `data/real_speech/test_list.jsonl`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ns2_hf.audio.io import load_audio  # noqa: E402
from ns2_hf.threads import apply_num_threads  # noqa: E402
from ns2_hf.metrics import (  # noqa: E402
    CODEC_METRICS,
    TTS_METRICS,
    EvaluationItem,
    evaluate_items,
    format_table,
    summarize,
)

# Rate at which recordings are scored when no model fixes one (--ground-truth-only, codec
# "identity"): the rate the metric models (Whisper, Resemblyzer, DNSMOS, wide-band PESQ) take.
METRIC_SAMPLING_RATE = 16000
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")


# ---------------------------------------------------------------------------------------------
# test lists
def make_test_list(
    corpus_dir: str,
    output: str,
    speakers: Sequence[str] = ("all",),
    n: int = 2,
    seed: int = 0,
    target_ids: Optional[Sequence[str]] = None,
    exclude_ids: Sequence[str] = (),
) -> List[Dict]:
    """Pick `n` utterances per speaker from an audiofolder corpus (`metadata.csv` with
    `file_name,text,speaker_id`) and give each a prompt: another utterance of the same speaker,
    never one of the targets, and an `other_prompt_audio`: an utterance of a different speaker (the
    floor for speaker similarity). With `target_ids` (e.g. a prepared dataset's validation split) the
    targets are drawn only from those utterances (up to `n` per speaker); prompts may come from any
    other utterance of the speaker. Targets in `exclude_ids` are never drawn (e.g. a tuning list
    disjoint from the test list). Writes `output` (JSONL, or CSV if it ends in .csv) and returns the rows."""
    corpus = Path(corpus_dir)
    with open(corpus / "metadata.csv", newline="", encoding="utf-8") as handle:
        metadata = list(csv.DictReader(handle))
    by_speaker: Dict[str, List[Dict]] = {}
    for row in metadata:
        by_speaker.setdefault(row["speaker_id"], []).append(row)
    chosen = sorted(by_speaker) if list(speakers) == ["all"] else list(speakers)
    missing = [speaker for speaker in chosen if speaker not in by_speaker]
    if missing:
        raise ValueError(f"speakers not in the corpus: {missing}; available: {sorted(by_speaker)}.")
    allowed_ids = None if target_ids is None else set(target_ids)
    excluded_ids = set(exclude_ids)

    def allowed(utterance_id: str) -> bool:
        return (allowed_ids is None or utterance_id in allowed_ids) and utterance_id not in excluded_ids

    rng = random.Random(seed)
    list_dir = Path(output).resolve().parent
    rows = []
    for speaker in chosen:
        utterances = sorted(by_speaker[speaker], key=lambda row: row["file_name"])
        if len(utterances) < n + 1:
            raise ValueError(f"speaker {speaker} has {len(utterances)} utterances; {n} targets + 1 prompt needed.")
        candidates = [row for row in utterances if allowed(Path(row["file_name"]).stem)]
        targets = rng.sample(candidates, min(n, len(candidates)))
        others = [row for row in utterances if row not in targets]
        other_speakers = [name for name in sorted(by_speaker) if name != speaker]
        for target in targets:
            prompt = rng.choice(others)
            other_prompt = rng.choice(by_speaker[rng.choice(other_speakers)]) if other_speakers else None
            rows.append(
                {
                    "id": Path(target["file_name"]).stem,
                    "text": target["text"],
                    "prompt_audio": os.path.relpath((corpus / prompt["file_name"]).resolve(), list_dir),
                    "audio": os.path.relpath((corpus / target["file_name"]).resolve(), list_dir),
                    "speaker": speaker,
                }
            )
            if other_prompt is not None:
                rows[-1]["other_prompt_audio"] = os.path.relpath((corpus / other_prompt["file_name"]).resolve(), list_dir)
    list_dir.mkdir(parents=True, exist_ok=True)
    write_rows(rows, output)
    return rows


def read_test_list(path: str, max_items: Optional[int] = None) -> List[Dict]:
    """Rows of a CSV/JSONL test list, with audio paths made absolute (they are relative to the list)."""
    list_path = Path(path)
    if not list_path.is_file():
        raise FileNotFoundError(f"no test list at {path}.")
    with open(list_path, newline="", encoding="utf-8") as handle:
        if list_path.suffix == ".csv":
            rows = list(csv.DictReader(handle))
        else:
            rows = [json.loads(line) for line in handle if line.strip()]
    for index, row in enumerate(rows):
        for column in ("text", "prompt_audio"):
            if not row.get(column):
                raise ValueError(f"{path}: row {index} has no {column!r}; a test list needs text and prompt_audio.")
        for column in ("prompt_audio", "audio", "other_prompt_audio"):
            if row.get(column):
                row[column] = str((list_path.parent / row[column]).resolve())
        row.setdefault("id", Path(row["audio"]).stem if row.get("audio") else f"item{index:04d}")
    return rows[:max_items] if max_items else rows


def write_rows(rows: Sequence[Dict], path: str) -> None:
    """Write dict rows as CSV (union of keys as columns; lists joined by "; ") or JSONL."""
    if str(path).endswith(".csv"):
        columns = list(dict.fromkeys(key for row in rows for key in row))
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({key: "; ".join(value) if isinstance(value, list) else value for key, value in row.items()})
    else:
        with open(path, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------------------------------------
# the three ways of building items
def synthesize_items(rows, model: str, steps: int, seed: int, out_dir: Path, ground_truth_only: bool,
                     temperature: Optional[float] = None, pipeline_options: Optional[Dict] = None) -> Tuple[List[EvaluationItem], int]:
    """Load audio (and synthesize with the pipeline unless `ground_truth_only`; `temperature` None = the
    scheduler's τ; `pipeline_options`: further `NS2Pipeline` arguments, e.g. `harmonic_phase`, `match_prompt_pitch`);
    returns items, their rate and the codec's frame rate (None without a model)."""
    from tqdm.auto import tqdm

    pipe = None
    sampling_rate, hop_length, frame_rate = METRIC_SAMPLING_RATE, None, None
    if not ground_truth_only:
        import soundfile as sf
        import torch

        from ns2_hf.pipelines import NS2Pipeline

        pipe = NS2Pipeline.from_pretrained(model)
        sampling_rate, hop_length = pipe.sampling_rate, pipe.hop_length
        frame_rate = sampling_rate / hop_length
        (out_dir / "audio").mkdir(parents=True, exist_ok=True)
    items = []
    for row in tqdm(rows, desc="synthesizing" if pipe else "loading"):
        item = EvaluationItem(
            id=row["id"],
            text=row["text"],
            prompt=load_audio(row["prompt_audio"], target_sampling_rate=sampling_rate, name="prompt_audio"),
            ground_truth=load_audio(row["audio"], target_sampling_rate=sampling_rate, name="audio") if row.get("audio") else None,
        )
        if row.get("other_prompt_audio"):
            item.other_speaker_prompt = load_audio(row["other_prompt_audio"], target_sampling_rate=sampling_rate, name="other_prompt_audio")
        if pipe is not None:
            output = pipe(
                row["text"],
                prompt_audio=row["prompt_audio"],
                num_inference_steps=steps,
                temperature=temperature,
                generator=torch.Generator().manual_seed(seed),
                **(pipeline_options or {}),
            )
            item.audio = np.asarray(output.audios[0], dtype=np.float32)
            item.durations = (output.durations[0].numpy() * hop_length / sampling_rate).tolist()
            sf.write(out_dir / "audio" / f"{row['id']}.wav", item.audio, sampling_rate)
        items.append(item)
    return items, sampling_rate, frame_rate


def codec_items(codec: str, sources: Sequence[Tuple[str, Optional[str]]], harmonic_phase: bool = False):
    """Reconstruct each `(audio path, text or None)` of `sources` with the codec ("identity"/"none":
    the input itself, a sanity ceiling for the metrics; otherwise an `NS2CodecModel` folder); with
    `harmonic_phase`, decode with the harmonic phase at the recording's own pitch (`ns2_hf.codec.resynthesize`). Returns items,
    their rate and the codec's frame rate (None for "identity")."""
    from tqdm.auto import tqdm

    model, sampling_rate, frame_rate = None, METRIC_SAMPLING_RATE, None
    if codec not in ("identity", "none"):
        from ns2_hf.codec import NS2CodecModel, resynthesize

        model = NS2CodecModel.from_pretrained(codec).eval()
        sampling_rate, frame_rate = int(model.config.sampling_rate), float(model.config.frame_rate)
    items = []
    for path, text in tqdm(sources, desc="reconstructing"):
        original = load_audio(path, target_sampling_rate=sampling_rate, name=str(path))
        if model is None:
            reconstruction = original.copy()
        else:
            reconstruction = resynthesize(model, original, harmonic_phase)
        items.append(EvaluationItem(id=Path(path).stem, text=text, audio=reconstruction, ground_truth=original))
    return items, sampling_rate, frame_rate


def audio_dir_sources(audio_dir: str, max_items: Optional[int]) -> List[Tuple[str, None]]:
    """Every audio file under `audio_dir` (sorted), without text."""
    paths = sorted(path for path in Path(audio_dir).rglob("*") if path.suffix.lower() in AUDIO_EXTENSIONS)
    if not paths:
        raise FileNotFoundError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) under {audio_dir}.")
    return [(str(path), None) for path in (paths[:max_items] if max_items else paths)]


def test_list_sources(rows: Sequence[Dict]) -> List[Tuple[str, str]]:
    """The ground-truth recording and text of each test-list row."""
    missing = [row["id"] for row in rows if not row.get("audio")]
    if missing:
        raise ValueError(f"codec mode over a test list needs an 'audio' column; missing for {missing[:5]}.")
    return [(row["audio"], row["text"]) for row in rows]


# ---------------------------------------------------------------------------------------------
def write_results(rows: List[Dict], out_dir: Path) -> Dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows)
    with open(out_dir / "per_utterance.json", "w", encoding="utf-8") as handle:
        json.dump(rows, handle, indent=1, ensure_ascii=False)
    write_rows(rows, str(out_dir / "per_utterance.csv"))
    with open(out_dir / "summary.json", "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=1)
    return summary


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="pipeline folder (NS2Pipeline.from_pretrained) to synthesize with")
    parser.add_argument("--test-list", "--test_list", dest="test_list", help="CSV/JSONL test list (output of --make-test-list)")
    parser.add_argument("--ground-truth-only", "--ground_truth_only", dest="ground_truth_only", action="store_true",
                        help="score only the ground-truth recordings (no model needed)")
    parser.add_argument("--steps", type=int, default=150, help="diffusion steps (the paper: 150)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="τ of the initial noise N(0, τ⁻¹ I) (default: the pipeline scheduler's, paper 1.44)")
    parser.add_argument("--seed", type=int, default=0, help="seed for synthesis noise and test-list sampling")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: $NS2_NUM_THREADS, else 1; see ns2_hf.threads)")
    parser.add_argument("--out_dir", default="eval_out", help="where per_utterance.json/.csv and summary.json go")
    parser.add_argument("--metrics", help=f"comma-separated subset (TTS: {','.join(TTS_METRICS)}; codec: {','.join(CODEC_METRICS)})")
    parser.add_argument("--asr", help="transformers ASR checkpoint for WER (default: Whisper tiny.en, faster-whisper)")
    parser.add_argument("--speaker_encoder", help="transformers x-vector checkpoint for SIM (default: Resemblyzer)")
    parser.add_argument("--max_items", type=int, help="use only the first N items")
    parser.add_argument("--frame_rate", type=float, default=None,
                        help="codec frame rate in Hz for the buzz metric (default: the model's or codec's; give it to "
                             "score recordings alone, e.g. 80 with --ground-truth-only or --codec identity)")
    parser.add_argument("--codec", help='codec mode: an NS2CodecModel folder, or "identity"/"none" (output = input)')
    parser.add_argument("--audio_dir", help="codec mode: folder of audio files to reconstruct (or give --test-list)")
    parser.add_argument("--harmonic_phase", choices=("auto", "on", "off"), default="auto",
                        help="decode voiced frames with the codec's harmonic phase (Fourier decoder). Model mode: auto = the "
                             "pipeline's default (on for a Fourier decoder). Codec mode: auto = off (the codec alone); on = "
                             "with the recording's own pitch (Praat) as f0")
    parser.add_argument("--match_prompt_pitch", action="store_true",
                        help="model mode: move the predicted pitch into the prompt's register (NS2Pipeline(match_prompt_pitch=True))")
    parser.add_argument("--pitch_register_tolerance", type=float, default=None,
                        help="model mode: keep the output's mean f0 within this fraction of the prompt's "
                             "(NS2Pipeline(pitch_register_tolerance=x); inf = as predicted); default the model's")
    parser.add_argument("--prompt_guidance_scale", type=float, default=1.0,
                        help="model mode: w of prompt guidance (NS2Pipeline(prompt_guidance_scale=w); needs a model trained "
                             "with prompt dropout; 1 = none)")
    parser.add_argument("--content_guidance_scale", type=float, default=1.0,
                        help="model mode: w of content guidance (NS2Pipeline(content_guidance_scale=w); needs a model trained "
                             "with condition dropout; 1 = none)")
    parser.add_argument("--spectrum_matching", type=float, default=None,
                        help="model mode: equalise each output's long-term spectrum towards its prompt's, 0 (off) to 1 "
                             "(NS2Pipeline(spectrum_matching=s)); default the model's")
    parser.add_argument("--num_candidates", type=int, default=None,
                        help="model mode: samples per utterance, the aligner keeps the one that says the text most clearly "
                             "(NS2Pipeline(num_candidates=N)); default the model's")
    parser.add_argument("--candidate_steps", type=int, default=None,
                        help="model mode: choose among the candidates on drafts of this many solver steps "
                             "(NS2Pipeline(candidate_steps=K)); default the model's")
    parser.add_argument("--speed", type=float, default=1.0, help="model mode: speaking rate (NS2Pipeline(speed=...); > 1 faster)")
    parser.add_argument("--min_phone_frames", type=int, default=None,
                        help="model mode: every phone at least this many frames (NS2Pipeline(min_phone_frames=N)); "
                             "default the pipeline's")
    parser.add_argument("--make-test-list", "--make_test_list", dest="make_test_list", metavar="CORPUS_DIR",
                        help="write a test list from this corpus to --test-list and exit")
    parser.add_argument("--speakers", default="all", help='--make-test-list: comma-separated speaker ids or "all"')
    parser.add_argument("--n", type=int, default=2, help="--make-test-list: utterances per speaker")
    parser.add_argument("--exclude", default=None, metavar="TEST_LIST",
                        help="--make-test-list: never draw a target of this test list (e.g. build a tuning list beside it)")
    parser.add_argument("--prepared", default=None,
                        help="--make-test-list: draw targets only from this prepared dataset's validation split (held-out utterances)")
    args = parser.parse_args(argv)
    if args.make_test_list and not args.test_list:
        parser.error("--make-test-list needs --test-list (the file to write).")
    if args.codec and bool(args.audio_dir) == bool(args.test_list):
        parser.error("--codec needs one of --audio_dir or --test-list.")
    if not args.make_test_list and not args.codec:
        if not args.test_list:
            parser.error("give --test-list (with --model or --ground-truth-only), --codec with --audio_dir or --test-list, or --make-test-list.")
        if not args.model and not args.ground_truth_only:
            parser.error("give --model, or --ground-truth-only to score the recordings alone.")
    return args


def main(argv=None) -> Dict:
    args = parse_args(argv)
    print(f"threads: {apply_num_threads(args.threads)}", file=sys.stderr)
    if args.make_test_list:
        target_ids = None
        if args.prepared:
            import datasets

            target_ids = datasets.load_from_disk(args.prepared)["validation"]["id"]
        exclude_ids = [row["id"] for row in read_test_list(args.exclude)] if args.exclude else ()
        rows = make_test_list(args.make_test_list, args.test_list, args.speakers.split(","), args.n, args.seed, target_ids,
                              exclude_ids)
        print(f"wrote {len(rows)} items to {args.test_list}")
        return {}
    out_dir = Path(args.out_dir)
    if args.codec:
        if args.audio_dir:
            items, sampling_rate, frame_rate = codec_items(args.codec, audio_dir_sources(args.audio_dir, args.max_items),
                                                           args.harmonic_phase == "on")
            default_metrics = CODEC_METRICS
        else:
            items, sampling_rate, frame_rate = codec_items(
                args.codec, test_list_sources(read_test_list(args.test_list, args.max_items)), args.harmonic_phase == "on"
            )
            default_metrics = CODEC_METRICS + ("wer",)
    else:
        rows = read_test_list(args.test_list, args.max_items)
        options = {"harmonic_phase": {"on": True, "off": False}.get(args.harmonic_phase), "match_prompt_pitch": args.match_prompt_pitch,
                   "prompt_guidance_scale": args.prompt_guidance_scale,
                   "content_guidance_scale": args.content_guidance_scale, "min_phone_frames": args.min_phone_frames,
                   "speed": args.speed, "pitch_register_tolerance": args.pitch_register_tolerance,
                   "spectrum_matching": args.spectrum_matching, "num_candidates": args.num_candidates,
                   "candidate_steps": args.candidate_steps}
        defaults = {"harmonic_phase": None, "match_prompt_pitch": False, "prompt_guidance_scale": 1.0, "content_guidance_scale": 1.0,
                    "min_phone_frames": None,
                    "speed": 1.0, "pitch_register_tolerance": None, "spectrum_matching": None, "num_candidates": None,
                    "candidate_steps": None}
        items, sampling_rate, frame_rate = synthesize_items(  # only what differs from the pipeline's defaults
            rows, args.model, args.steps, args.seed, out_dir, args.ground_truth_only, args.temperature,
            {name: value for name, value in options.items() if value != defaults[name]},
        )
        default_metrics = TTS_METRICS
    metrics = args.metrics.split(",") if args.metrics else default_metrics
    frame_rate = args.frame_rate or frame_rate
    results = evaluate_items(items, sampling_rate, metrics, asr=args.asr, speaker_encoder=args.speaker_encoder, progress=True,
                             frame_rate=frame_rate)
    summary = write_results(results, out_dir)
    print(format_table(summary))
    print(f"per-utterance results and summary in {out_dir}")
    return summary


if __name__ == "__main__":
    main()
