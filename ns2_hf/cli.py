"""`ns2-tts`: speak text in the voice of a prompt recording.

    ns2-tts --text "Hello there." --prompt examples/prompt.wav --out out.wav
    ns2-tts --model path/to/pipeline --text "..." --prompt voice.flac --out out.wav --steps 50 --seed 1
    ns2-tts --text-file lines.txt --prompt voice.wav --out-dir speech/     # one file per line, model loaded once
    ns2-tts --text-file lines.jsonl --prompt voice.wav --out-dir speech/   # {"text": ..., "id"?, "prompt"?, "seed"?}

The paper's other modes (one at a time; --prompt is always the target voice):

    ns2-tts --source speech.wav --prompt voice.wav --out converted.wav [--text "transcript"] [--strength 0.8]
    ns2-tts --enhance noisy.wav --prompt clean_same_voice.wav --out clean.wav [--text "transcript"] [--min-phone-frames 5]
    ns2-tts --score song.mid --text "one word per note" --prompt voice.wav --out sung.wav

A text of any length is spoken in chunks (sentences, long sentences cut at clauses; see
`ns2_hf.pipelines.long_form`). Heavy libraries (torch, transformers, diffusers) are imported only once
every argument has been checked.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Dict, List

#: Name of the JSONL manifest `--out-dir` receives (one line per utterance written).
MANIFEST_NAME = "manifest.jsonl"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ns2-tts", description="NaturalSpeech 2 zero-shot text-to-speech.")
    parser.add_argument("--model", default=None, help="pipeline folder, shipped model name or Hub repo id (default: the shipped ns2-tiny-en)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--text", help="the text to speak (any length: long text is spoken sentence by sentence); with "
                        "--source/--enhance: their transcript, default the offline ASR's; with --score: the lyrics, one word "
                        "per note, default the MIDI's")
    source.add_argument(
        "--text-file",
        help='batch mode: a UTF-8 file with one text per line, or a .jsonl file with one {"text": ..., "id": ..., '
        '"prompt": ..., "seed": ...} object per line (only "text" required); needs --out-dir',
    )
    parser.add_argument("--prompt", help="a few seconds of the target voice (wav/flac/ogg); in batch mode the default for lines without one")
    parser.add_argument("--out", default="out.wav", help="where to write the speech (.wav, .flac, .ogg or .mp3; never the prompt)")
    parser.add_argument("--out-dir", help=f"batch mode: folder for <id>.wav per line and {MANIFEST_NAME} (created if missing)")
    parser.add_argument("--steps", type=int, default=150, help="diffusion solver steps (paper: 150)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial noise, 0 to 2**64 - 1")
    parser.add_argument("--speed", type=float, default=1.0, help=">1 speaks faster (0.25 to 4)")
    parser.add_argument("--temperature", type=float, default=None, help="τ of the initial noise N(0, 1/τ), 0.01 to 1000 (default: the model's)")
    parser.add_argument("--max-phonemes-per-chunk", type=int, default=100, help="longest piece of a long text spoken in one go, in phonemes")
    parser.add_argument("--batch-size", type=int, default=4, help="chunks of a long text synthesized together")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: $NS2_NUM_THREADS, else 1, which stays fast on a busy machine)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--harmonic-phase", choices=("auto", "on", "off"), default="auto",
                        help="decode voiced sounds with a harmonic phase at the spoken pitch instead of the codec decoder's "
                             "own phases (auto: on for a codec with the Fourier decoder, as the shipped model's)")
    parser.add_argument("--match-prompt-pitch", action="store_true",
                        help="text to speech: put the predicted pitch's mean on the prompt's register (the same as "
                             "--pitch-register-tolerance 0)")
    parser.add_argument("--pitch-register-tolerance", type=float, default=None,
                        help="text to speech: keep the output's mean pitch within this fraction of the prompt's, moving the "
                             "predicted contour only as far as needed (default: the model's, 0.1 for the shipped one; inf = "
                             "as predicted)")
    parser.add_argument("--prompt-guidance", type=float, default=1.0,
                        help="text to speech: w of prompt guidance, > 1 pushes the output towards the prompt's voice (the "
                             "denoiser runs on twice the batch; 0 to 10; needs a model trained with prompt dropout; 1 = none)")
    parser.add_argument("--content-guidance", type=float, default=1.0,
                        help="text to speech: w of content guidance, > 1 pushes the output towards what the phonemes and "
                             "pitch say (one more denoiser batch; 0 to 10; needs a model trained with condition dropout; 1 = none)")
    parser.add_argument("--spectrum-matching", type=float, default=None,
                        help="text to speech: equalise the output's long-term spectrum towards the prompt's (its channel "
                             "and spectral tilt), from 0 (off) to 1 (default: the model's)")
    parser.add_argument("--num-candidates", type=int, default=None,
                        help="text to speech: draw this many samples of each sentence and keep the one the model's aligner "
                             "finds says the text most clearly (fewer misread words; each extra one costs a draft, see "
                             "--candidate-steps, or a whole synthesis without drafts; 1 to 16; default: the model's)")
    parser.add_argument("--candidate-steps", type=int, default=None,
                        help="text to speech, with several candidates: choose among them on drafts of this many solver "
                             "steps, then synthesize only the chosen one with --steps (default: the model's; a value "
                             ">= --steps synthesizes every candidate in full)")
    parser.add_argument("--untrained", action="store_true", help="use a random-weight tiny pipeline (plumbing check; never used unless asked for)")
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--source", default=None, help="voice conversion: say this speech in the --prompt voice")
    modes.add_argument("--enhance", default=None, help="speech enhancement: clean this noisy speech (--prompt: the clean voice)")
    modes.add_argument("--score", default=None, help="singing: sing this MIDI melody (--text: lyrics)")
    parser.add_argument("--strength", type=float, default=None,
                        help="--source/--enhance: how far the forward ODE carries the source, in (0, 1] (default 0.8; lower keeps more of the source, its noise too)")
    parser.add_argument("--min-phone-frames", type=int, default=None,
                        help="the least 12.5 ms frames a phone gets (1 = as predicted or aligned). Text to speech: default "
                             "the model's (the shipped model's 6; the output gets longer). --source/--enhance: the source's "
                             "short phones take frames from its pauses, its length kept (default 1 / 5)")
    return parser


def pipeline_class(args):
    """The pipeline a mode needs: conversion and enhancement load the release folder's aligner too."""
    from .pipelines import NS2Pipeline, NS2SpeechEnhancementPipeline, NS2VoiceConversionPipeline

    return NS2VoiceConversionPipeline if args.source else NS2SpeechEnhancementPipeline if args.enhance else NS2Pipeline


def run_mode(args, pipeline):
    """Voice conversion, enhancement or singing with the flags of `args`; returns the pipeline output."""
    import torch

    from .pipelines import NS2SpeechEnhancementPipeline, NS2VoiceConversionPipeline
    from .singing import load_score

    options = {name: value for name, value in (("strength", args.strength), ("min_phone_frames", args.min_phone_frames))
               if value is not None}  # else the pipeline's defaults
    if args.source or args.enhance:
        wanted = NS2VoiceConversionPipeline if args.source else NS2SpeechEnhancementPipeline
        if not isinstance(pipeline, wanted):  # the random-weight fallback: no aligner, refused with its reason
            pipeline = wanted.from_pipe(pipeline)
        source = args.source or args.enhance
        return pipeline(source, args.prompt, transcript=args.text, num_inference_steps=args.steps, **options,
                        **harmonic_phase_argument(args))
    conditions = load_score(args.score, pipeline.tokenizer, pipeline.sampling_rate / pipeline.hop_length, lyrics=args.text)
    return pipeline(
        conditions.text, prompt_audio=args.prompt, num_inference_steps=args.steps, generator=torch.Generator().manual_seed(args.seed),
        temperature=args.temperature, durations=[conditions.durations], pitch=[conditions.f0], **harmonic_phase_argument(args),
    )


def harmonic_phase_argument(args) -> Dict:
    """`--harmonic-phase` as pipeline keyword arguments: none for "auto" (the pipeline's default)."""
    return {} if args.harmonic_phase == "auto" else {"harmonic_phase": args.harmonic_phase == "on"}


def read_text_file(path: str, default_prompt: str | None, default_seed: int) -> List[Dict]:
    """The utterances of a `--text-file`: `[{"id", "text", "prompt", "seed"}]`, ids `0001`, `0002`, ... unless a
    JSONL line gives its own.

    Raises:
        GenerationArgumentError: the file is missing or unreadable, a line is not valid JSON or lacks a text,
            an id repeats or is not a plain file name, or a line has no prompt and no `--prompt` is given.
    """
    from .pipelines.arguments import GenerationArgumentError

    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise GenerationArgumentError(f"--text-file {path!r} cannot be read ({error}).") from error
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if path.endswith(".jsonl"):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise GenerationArgumentError(f"--text-file {path!r} line {number} is not JSON ({error}).") from error
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise GenerationArgumentError(f'--text-file {path!r} line {number} needs a "text" string.')
        else:
            row = {"text": line}
        row = {"id": str(row.get("id", f"{len(rows) + 1:04d}")), "text": row["text"],
               "prompt": row.get("prompt", default_prompt), "seed": row.get("seed", default_seed)}
        if Path(row["id"]).name != row["id"] or row["id"] in (".", ".."):
            raise GenerationArgumentError(f"--text-file {path!r} line {number}: id {row['id']!r} is not a plain file name.")
        if row["prompt"] is None:
            raise GenerationArgumentError(f"--text-file {path!r} line {number} has no prompt: give --prompt or a \"prompt\" field.")
        rows.append(row)
    if not rows:
        raise GenerationArgumentError(f"--text-file {path!r} holds no text.")
    if len({row["id"] for row in rows}) != len(rows):
        raise GenerationArgumentError(f"--text-file {path!r} repeats an id; each line's id names its output file.")
    return rows


def check_requests(args) -> List[Dict]:
    """Every argument checked before anything heavy is imported or loaded. Returns the utterances to speak:
    `[{"id", "text", "prompt", "seed", "out"}]`."""
    from .audio.io import load_audio
    from .audio.output import check_output_path
    from .pipelines.arguments import GenerationArgumentError, check_generation_arguments
    from .threads import resolve_num_threads

    resolve_num_threads(args.threads)
    for name, value in (("--max-phonemes-per-chunk", args.max_phonemes_per_chunk), ("--batch-size", args.batch_size)):
        if value < 1:
            raise GenerationArgumentError(f"{name} must be at least 1, got {value}.")
    if args.text_file is None:
        if args.prompt is None:
            raise GenerationArgumentError("--prompt is required: give a few seconds of the voice to speak in.")
        text = args.text if args.text is not None else "-"  # a mode without --text: the ASR's or the MIDI's words
        requests = [{"id": None, "text": text, "prompt": args.prompt, "seed": args.seed, "out": args.out}]
    else:
        if args.out_dir is None:
            raise GenerationArgumentError("--text-file needs --out-dir, the folder that receives one file per line.")
        out_dir = Path(args.out_dir)
        if out_dir.exists() and not out_dir.is_dir():
            raise GenerationArgumentError(f"--out-dir {args.out_dir!r} is a file, not a folder.")
        out_dir.mkdir(parents=True, exist_ok=True)
        requests = read_text_file(args.text_file, args.prompt, args.seed)
        for request in requests:
            request["out"] = str(out_dir / f"{request['id']}.wav")
    checked_prompts = set()
    for request in requests:
        where = f"{args.text_file} (id {request['id']}): " if args.text_file else ""
        try:
            check_generation_arguments(request["text"], args.steps, args.speed, args.temperature, request["seed"],
                                       args.prompt_guidance, args.content_guidance)
        except GenerationArgumentError as error:
            raise GenerationArgumentError(f"{where}{error}") from error
        request["out"] = check_output_path(request["out"], prompt=request["prompt"])
        if request["prompt"] not in checked_prompts:
            load_audio(request["prompt"], name="--prompt")  # exists and decodes
            checked_prompts.add(request["prompt"])
    if args.source or args.enhance:
        load_audio(args.source or args.enhance, name="--source" if args.source else "--enhance")
    return requests


def load_pipeline(args):
    """The pipeline on its device, with the thread setting applied."""
    import torch

    from .pipelines import DEFAULT_MODEL, build_untrained_pipeline
    from .threads import apply_num_threads

    threads = apply_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.untrained:
        print("[ns2-tts] WARNING: random-weight tiny pipeline — the output is noise, not speech.", file=sys.stderr)
        pipeline = build_untrained_pipeline("tiny")
    else:
        pipeline = pipeline_class(args).from_pretrained(args.model)
    name = "untrained tiny" if args.untrained else args.model or DEFAULT_MODEL
    print(f"[ns2-tts] model: {name} | steps {args.steps} | device {device} | threads {threads}", file=sys.stderr)
    return pipeline.to(device)


def main(argv=None) -> int:
    """Checks every argument, then loads the model once, speaks each text and writes its file (and, in batch
    mode, `manifest.jsonl`). Returns the exit code: 0 written, 2 a clear error (one line, no traceback)."""
    from .pipelines.arguments import MAX_CANDIDATES, MAX_INFERENCE_STEPS, MIN_INFERENCE_STEPS, USER_ERRORS
    from .threads import ThreadSettingError

    parser = build_parser()
    args = parser.parse_args(argv)
    mode = args.source or args.enhance or args.score
    if args.text is None and args.text_file is None and not mode:
        parser.error("--text or --text-file is required (or one of --source, --enhance, --score).")
    if args.text_file is not None and mode:
        parser.error("--text-file speaks texts; --source, --enhance and --score take one file each.")
    if args.strength is not None and not (args.source or args.enhance):
        parser.error("--strength applies to --source and --enhance only.")
    if args.min_phone_frames is not None and args.score:
        parser.error("--min-phone-frames does not apply to --score (the notes set the durations).")
    if args.min_phone_frames is not None and args.min_phone_frames < 1:
        parser.error(f"--min-phone-frames must be >= 1, got {args.min_phone_frames}.")
    if args.match_prompt_pitch and mode:
        parser.error("--match-prompt-pitch applies to text to speech only (--source keeps the source's melody moved "
                     "into the prompt's range; --score sings the notes).")
    if args.pitch_register_tolerance is not None and mode:
        parser.error("--pitch-register-tolerance applies to text to speech only.")
    if args.pitch_register_tolerance is not None and not args.pitch_register_tolerance >= 0:
        parser.error(f"--pitch-register-tolerance must be >= 0, got {args.pitch_register_tolerance}.")
    if args.prompt_guidance != 1.0 and mode:
        parser.error("--prompt-guidance applies to text to speech only.")
    if args.content_guidance != 1.0 and mode:
        parser.error("--content-guidance applies to text to speech only.")
    if args.spectrum_matching is not None and mode:
        parser.error("--spectrum-matching applies to text to speech only.")
    if args.spectrum_matching is not None and not 0 <= args.spectrum_matching <= 1:
        parser.error(f"--spectrum-matching must be from 0 to 1, got {args.spectrum_matching}.")
    if args.num_candidates is not None and mode:
        parser.error("--num-candidates applies to text to speech only.")
    if args.num_candidates is not None and not 1 <= args.num_candidates <= MAX_CANDIDATES:
        parser.error(f"--num-candidates must be from 1 to {MAX_CANDIDATES}, got {args.num_candidates}.")
    if args.candidate_steps is not None and mode:
        parser.error("--candidate-steps applies to text to speech only.")
    if args.candidate_steps is not None and not MIN_INFERENCE_STEPS <= args.candidate_steps <= MAX_INFERENCE_STEPS:
        parser.error(f"--candidate-steps must be from {MIN_INFERENCE_STEPS} to {MAX_INFERENCE_STEPS}, got {args.candidate_steps}.")
    started = time.perf_counter()
    try:
        requests = check_requests(args)  # a mistake costs no import of torch, no model load, no synthesis
        from .audio.output import write_audio
        from .pipelines.long_form import speak_long_text

        pipeline = load_pipeline(args)
        if mode:
            output = run_mode(args, pipeline)
            write_audio(requests[0]["out"], output.audios[0], output.sampling_rate)
            print(f"[ns2-tts] wrote {requests[0]['out']}: {len(output.audios[0]) / output.sampling_rate:.2f} s of audio")
            if getattr(output, "transcripts", None):  # --source / --enhance: the text whose phonemes were kept
                print(f"[ns2-tts] phonemes of: {output.transcripts[0]!r}")
            requests = []
        manifest = []
        for request in requests:
            request_started = time.perf_counter()
            try:
                output = speak_long_text(
                    pipeline, request["text"], request["prompt"], seed=request["seed"], num_inference_steps=args.steps,
                    temperature=args.temperature, speed=args.speed, max_phonemes_per_chunk=args.max_phonemes_per_chunk,
                    batch_size=args.batch_size, progress=len(requests) == 1, **harmonic_phase_argument(args),
                    match_prompt_pitch=args.match_prompt_pitch, pitch_register_tolerance=args.pitch_register_tolerance,
                    prompt_guidance_scale=args.prompt_guidance, content_guidance_scale=args.content_guidance,
                    min_phone_frames=args.min_phone_frames, spectrum_matching=args.spectrum_matching,
                    num_candidates=args.num_candidates, candidate_steps=args.candidate_steps,
                )
            except USER_ERRORS as error:  # name the line in batch mode; the files before it are written
                raise type(error)(f"{args.text_file} (id {request['id']}): {error}" if args.text_file else str(error)) from error
            write_audio(request["out"], output.audio, output.sampling_rate)
            seconds = len(output.audio) / output.sampling_rate
            manifest.append({"id": request["id"], "text": request["text"], "prompt": str(request["prompt"]),
                             "audio": str(request["out"]), "seconds": round(seconds, 3), "chunks": len(output.chunks),
                             "synthesis_seconds": round(time.perf_counter() - request_started, 3)})
            print(f"[ns2-tts] wrote {request['out']}: {seconds:.2f} s of audio at {output.sampling_rate} Hz")
        if args.text_file:
            manifest_path = Path(args.out_dir) / MANIFEST_NAME
            manifest_path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in manifest), encoding="utf-8")
            print(f"[ns2-tts] {len(manifest)} files and {manifest_path} in {os.fspath(args.out_dir)}")
    except USER_ERRORS + (ThreadSettingError,) as error:
        print(f"[ns2-tts] error: {error}", file=sys.stderr)
        return 2
    print(f"[ns2-tts] done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
