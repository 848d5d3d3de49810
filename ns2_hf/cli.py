"""`ns2-tts`: speak text in the voice of a prompt recording.

    ns2-tts --text "Hello there." --prompt examples/prompt.wav --out out.wav
    ns2-tts --model path/to/pipeline --text "..." --prompt voice.flac --out out.wav --steps 50 --seed 1
"""

from __future__ import annotations

import argparse
import sys
import time

import torch


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ns2-tts", description="NaturalSpeech 2 zero-shot text-to-speech.")
    parser.add_argument("--model", default=None, help="pipeline folder, shipped model name or Hub repo id (default: the shipped ns2-tiny-en)")
    parser.add_argument("--text", required=True, help="the text to speak")
    parser.add_argument("--prompt", required=True, help="a few seconds of the target voice (wav/flac/ogg)")
    parser.add_argument("--out", default="out.wav", help="where to write the speech (.wav, .flac, .ogg or .mp3; never the prompt)")
    parser.add_argument("--steps", type=int, default=150, help="diffusion solver steps (paper: 150)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial noise, 0 to 2**64 - 1")
    parser.add_argument("--speed", type=float, default=1.0, help=">1 speaks faster (0.25 to 4)")
    parser.add_argument("--temperature", type=float, default=None, help="τ of the initial noise N(0, 1/τ), 0.01 to 1000 (default: the model's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--untrained", action="store_true", help="use a random-weight tiny pipeline (plumbing check; never used unless asked for)")
    return parser


def main(argv=None) -> int:
    """Checks every argument, then loads the model, synthesizes and writes the file. Returns the exit code:
    0 written, 2 a clear error (printed as one line, no traceback)."""
    from .audio import load_audio
    from .audio.output import check_output_path, write_audio
    from .pipelines import DEFAULT_MODEL, NS2Pipeline, build_untrained_pipeline
    from .pipelines.arguments import USER_ERRORS, check_generation_arguments

    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        # every argument first: a mistake costs no model load and no synthesis
        check_generation_arguments(args.text, args.steps, args.speed, args.temperature, args.seed)
        out = check_output_path(args.out, prompt=args.prompt)
        load_audio(args.prompt, name="--prompt")  # exists and decodes
        if args.untrained:
            print("[ns2-tts] WARNING: random-weight tiny pipeline — the output is noise, not speech.", file=sys.stderr)
            pipeline = build_untrained_pipeline("tiny")
        else:
            pipeline = NS2Pipeline.from_pretrained(args.model)
        pipeline = pipeline.to(args.device)
        print(f"[ns2-tts] model: {args.model or DEFAULT_MODEL} | steps {args.steps} | device {args.device}", file=sys.stderr)
        output = pipeline(
            args.text,
            prompt_audio=args.prompt,
            num_inference_steps=args.steps,
            generator=torch.Generator().manual_seed(args.seed),
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
