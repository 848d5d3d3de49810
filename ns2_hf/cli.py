"""`ns2-tts`: speak text in the voice of a prompt recording.

    ns2-tts --text "Hello there." --prompt examples/prompt.wav --out out.wav
    ns2-tts --model path/to/pipeline --text "..." --prompt voice.flac --out out.wav --steps 50 --seed 1

The paper's other modes (one at a time; --prompt is always the target voice):

    ns2-tts --source speech.wav --prompt voice.wav --out converted.wav [--text "transcript"] [--strength 0.8]
    ns2-tts --enhance noisy.wav --prompt clean_same_voice.wav --out clean.wav [--text "transcript"]
    ns2-tts --score song.mid --text "one word per note" --prompt voice.wav --out sung.wav
"""

from __future__ import annotations

import argparse
import sys
import time

import torch


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ns2-tts", description="NaturalSpeech 2 zero-shot text-to-speech.")
    parser.add_argument("--model", default=None, help="pipeline folder, shipped model name or Hub repo id (default: the shipped ns2-tiny-en)")
    parser.add_argument("--text", default=None, help="the text to speak (with --source/--enhance: their transcript, "
                        "default the offline ASR's; with --score: the lyrics, one word per note, default the MIDI's)")
    parser.add_argument("--prompt", required=True, help="a few seconds of the target voice (wav/flac/ogg)")
    parser.add_argument("--out", default="out.wav", help="where to write the speech (.wav, .flac, .ogg or .mp3; never the prompt)")
    parser.add_argument("--steps", type=int, default=150, help="diffusion solver steps (paper: 150)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial noise, 0 to 2**64 - 1")
    parser.add_argument("--speed", type=float, default=1.0, help=">1 speaks faster (0.25 to 4)")
    parser.add_argument("--temperature", type=float, default=None, help="τ of the initial noise N(0, 1/τ), 0.01 to 1000 (default: the model's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--untrained", action="store_true", help="use a random-weight tiny pipeline (plumbing check; never used unless asked for)")
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--source", default=None, help="voice conversion: say this speech in the --prompt voice")
    modes.add_argument("--enhance", default=None, help="speech enhancement: clean this noisy speech (--prompt: the clean voice)")
    modes.add_argument("--score", default=None, help="singing: sing this MIDI melody (--text: lyrics)")
    parser.add_argument("--strength", type=float, default=None,
                        help="--source/--enhance: how far the forward ODE carries the source, in (0, 1] (defaults 0.8 / 0.4)")
    return parser


def pipeline_class(args):
    """The pipeline a mode needs: conversion and enhancement load the release folder's aligner too."""
    from .pipelines import NS2Pipeline, NS2SpeechEnhancementPipeline, NS2VoiceConversionPipeline

    return NS2VoiceConversionPipeline if args.source else NS2SpeechEnhancementPipeline if args.enhance else NS2Pipeline


def run_mode(args, pipeline, generator):
    """Voice conversion, enhancement or singing with the flags of `args`; returns the pipeline output."""
    from .pipelines import NS2SpeechEnhancementPipeline, NS2VoiceConversionPipeline
    from .singing import load_score

    strength = {} if args.strength is None else {"strength": args.strength}
    if args.source or args.enhance:
        wanted = NS2VoiceConversionPipeline if args.source else NS2SpeechEnhancementPipeline
        if not isinstance(pipeline, wanted):  # the random-weight fallback: no aligner, refused with its reason
            pipeline = wanted.from_pipe(pipeline)
        source = args.source or args.enhance
        return pipeline(source, args.prompt, transcript=args.text, num_inference_steps=args.steps, **strength)
    conditions = load_score(args.score, pipeline.tokenizer, pipeline.sampling_rate / pipeline.hop_length, lyrics=args.text)
    return pipeline(
        conditions.text, prompt_audio=args.prompt, num_inference_steps=args.steps, generator=generator,
        temperature=args.temperature, durations=[conditions.durations], pitch=[conditions.f0],
    )


def main(argv=None) -> int:
    """Checks every argument, then loads the model, synthesizes and writes the file. Returns the exit code:
    0 written, 2 a clear error (printed as one line, no traceback)."""
    from .audio import load_audio
    from .audio.output import check_output_path, write_audio
    from .pipelines import DEFAULT_MODEL, build_untrained_pipeline
    from .pipelines.arguments import USER_ERRORS, check_generation_arguments

    parser = build_parser()
    args = parser.parse_args(argv)
    mode = args.source or args.enhance or args.score
    if args.text is None and not mode:
        parser.error("--text is required (or one of --source, --enhance, --score).")
    if args.strength is not None and not (args.source or args.enhance):
        parser.error("--strength applies to --source and --enhance only.")
    started = time.perf_counter()
    try:
        # every argument first: a mistake costs no model load and no synthesis
        check_generation_arguments(args.text if args.text is not None else "-", args.steps, args.speed, args.temperature,
                                   args.seed)
        out = check_output_path(args.out, prompt=args.prompt)
        load_audio(args.prompt, name="--prompt")  # exists and decodes
        if args.source or args.enhance:
            load_audio(args.source or args.enhance, name="--source" if args.source else "--enhance")
        if args.untrained:
            print("[ns2-tts] WARNING: random-weight tiny pipeline — the output is noise, not speech.", file=sys.stderr)
            pipeline = build_untrained_pipeline("tiny")
        else:
            pipeline = pipeline_class(args).from_pretrained(args.model)
        pipeline = pipeline.to(args.device)
        print(f"[ns2-tts] model: {args.model or DEFAULT_MODEL} | steps {args.steps} | device {args.device}", file=sys.stderr)
        generator = torch.Generator().manual_seed(args.seed)
        if mode:
            output = run_mode(args, pipeline, generator)
        else:
            output = pipeline(
                args.text,
                prompt_audio=args.prompt,
                num_inference_steps=args.steps,
                generator=generator,
                temperature=args.temperature,
                speed=args.speed,
            )
        audio = output.audios[0]
        write_audio(out, audio, output.sampling_rate)
    except USER_ERRORS as error:
        print(f"[ns2-tts] error: {error}", file=sys.stderr)
        return 2
    seconds = len(audio) / output.sampling_rate
    elapsed = time.perf_counter() - started
    print(f"[ns2-tts] wrote {out}: {seconds:.2f} s of audio at {output.sampling_rate} Hz in {elapsed:.1f} s")
    if getattr(output, "transcripts", None):  # --source / --enhance: the text whose phonemes were kept
        print(f"[ns2-tts] phonemes of: {output.transcripts[0]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
