"""`ns2-tts`: speak text in the voice of a prompt recording.

    ns2-tts --text "Hello there." --prompt examples/prompt.wav --out out.wav
    ns2-tts --model path/to/pipeline --text "..." --prompt voice.flac --out out.wav --steps 50 --seed 1
"""

from __future__ import annotations

import argparse
import sys
import time

import soundfile as sf
import torch


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ns2-tts", description="NaturalSpeech 2 zero-shot text-to-speech.")
    parser.add_argument("--model", default=None, help="pipeline folder, shipped model name or Hub repo id (default: the shipped ns2-tiny-en)")
    parser.add_argument("--text", required=True, help="the text to speak")
    parser.add_argument("--prompt", required=True, help="a few seconds of the target voice (wav/flac/ogg)")
    parser.add_argument("--out", default="out.wav", help="where to write the speech (wav)")
    parser.add_argument("--steps", type=int, default=150, help="diffusion solver steps (paper: 150)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speed", type=float, default=1.0, help=">1 speaks faster")
    parser.add_argument("--temperature", type=float, default=None, help="τ of the initial noise N(0, 1/τ)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--untrained", action="store_true", help="use a random-weight tiny pipeline (plumbing check)")
    return parser


def main(argv=None) -> int:
    from .audio import AudioInputError
    from .pipelines import DEFAULT_MODEL, NS2Pipeline, build_untrained_pipeline

    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    if args.untrained:
        print("[ns2-tts] WARNING: random-weight tiny pipeline — the output is noise, not speech.", file=sys.stderr)
        pipeline = build_untrained_pipeline("tiny")
    else:
        try:
            pipeline = NS2Pipeline.from_pretrained(args.model)
        except FileNotFoundError as error:
            print(f"[ns2-tts] {error}", file=sys.stderr)
            print("[ns2-tts] WARNING: no trained model found; using random weights — the output is noise.", file=sys.stderr)
            pipeline = build_untrained_pipeline("tiny")
    pipeline = pipeline.to(args.device)
    steps = args.steps
    print(f"[ns2-tts] model: {args.model or DEFAULT_MODEL} | steps {steps} | device {args.device}", file=sys.stderr)
    generator = torch.Generator().manual_seed(args.seed)
    try:
        output = pipeline(
            args.text,
            prompt_audio=args.prompt,
            num_inference_steps=steps,
            generator=generator,
            temperature=args.temperature,
            speed=args.speed,
        )
    except (AudioInputError, ValueError) as error:
        print(f"[ns2-tts] error: {error}", file=sys.stderr)
        return 2
    audio = output.audios[0]
    sf.write(args.out, audio, output.sampling_rate)
    seconds = len(audio) / output.sampling_rate
    elapsed = time.perf_counter() - started
    print(f"[ns2-tts] wrote {args.out}: {seconds:.2f} s of audio at {output.sampling_rate} Hz in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
