"""Gradio demo (and Hugging Face Space) for ns2-hf: type text, give a few seconds of a voice, hear it spoken.

    python demo/app.py                                  # the shipped model (pretrained/ns2-tiny-en)
    python demo/app.py --model path/or/user/repo --port 7860 --host 0.0.0.0
    NS2_MODEL=user/ns2-tiny-en python app.py            # how the Space picks its model

If the model cannot be loaded (missing, corrupt, not safetensors), the page says why and synthesizes nothing.
`--untrained` runs a random-weight tiny pipeline instead, said on the page: the plumbing works, the output is noise.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import List, Optional, Tuple

import gradio as gr
import numpy as np
import torch
from matplotlib.figure import Figure

from ns2_hf.alignment import NS2AlignerModel
from ns2_hf.audio import AudioInputError, mel_spectrogram
from ns2_hf.audio.output import check_generated_audio
from ns2_hf.pipelines import (
    DEFAULT_MODEL,
    NS2Pipeline,
    NS2SpeechEnhancementPipeline,
    NS2VoiceConversionPipeline,
    build_untrained_pipeline,
)
from ns2_hf.pipelines.arguments import USER_ERRORS, check_generation_arguments
from ns2_hf.pipelines.loading import ModelLoadError
from ns2_hf.pipelines.long_form import speak_long_text
from ns2_hf.threads import apply_num_threads

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
#: Longest text the demo accepts: a paragraph, spoken sentence by sentence (about a minute of CPU at 150
#: steps); more would hold the shared queue for minutes.
MAX_TEXT_CHARS = 1000
#: Solver steps offered by default: the paper's (and `ns2-tts`'s) 150.
DEFAULT_STEPS = 150
#: Most takes (`num_candidates`) offered: each costs a draft (the model's `candidate_steps`) or, without drafts, a whole
#: synthesis on the shared queue.
MAX_TAKES = 4
#: Mel picture settings (display only).
MEL_N_FFT = 1024
MEL_N_MELS = 80

DESCRIPTION = """# NaturalSpeech 2 — zero-shot text-to-speech
Type a sentence and give **3–10 seconds of a voice** (upload a file or record with the microphone); the model
speaks the sentence in that voice. Latent diffusion over neural-codec latents
([Shen et al., 2023](https://arxiv.org/abs/2304.09116)), packaged as a diffusers pipeline by `ns2-hf`.

*Use only voices whose owners consented, and say that the audio is synthetic.*"""


def load_pipeline(model: Optional[str], untrained: bool = False) -> Tuple[Optional[NS2Pipeline], str, Optional[str]]:
    """Load `model` (a pipeline folder, a shipped model name or a Hub repo id; None = the shipped model).

    Returns:
        `(pipeline, model_name, problem)`: `problem` is None when the model loaded. With `untrained`, the
        pipeline is `build_untrained_pipeline("tiny")` (random weights) and `problem` says so; when the model
        cannot be loaded, the pipeline is None and `problem` is the `ModelLoadError` message.
    """
    name = model or DEFAULT_MODEL
    if untrained:
        print("[demo] WARNING: --untrained: random weights; the output is noise.", flush=True)
        return build_untrained_pipeline("tiny"), "untrained tiny", "random weights asked for with --untrained"
    try:
        return NS2Pipeline.from_pretrained(model or None), name, None
    except ModelLoadError as error:
        print(f"[demo] ERROR: {error}", flush=True)
        return None, name, str(error)


def mel_figure(audio: np.ndarray, sampling_rate: int, hop_length: int) -> Figure:
    """A picture of the log-mel spectrogram of `audio` `(samples,)`, time in seconds on the x axis."""
    mel = mel_spectrogram(
        torch.from_numpy(audio), sampling_rate, n_fft=MEL_N_FFT, hop_length=hop_length, n_mels=MEL_N_MELS
    )[0].numpy()
    figure = Figure(figsize=(8, 2.6), dpi=100)
    axes = figure.add_subplot()
    image = axes.imshow(
        mel, origin="lower", aspect="auto", cmap="magma", extent=(0.0, len(audio) / sampling_rate, 0, mel.shape[0])
    )
    axes.set_xlabel("time (s)")
    axes.set_ylabel("mel bin")
    figure.colorbar(image, ax=axes, label="log magnitude")
    figure.tight_layout()
    return figure


def example_rows() -> List[List[str]]:
    """`[sentence, prompt path]` rows for `gr.Examples`: each example prompt with one example sentence."""
    sentences = [
        line.strip() for line in (EXAMPLES_DIR / "sentences.txt").read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    prompts = sorted(EXAMPLES_DIR.glob("*.wav"))
    return [[sentences[index % len(sentences)], str(prompt)] for index, prompt in enumerate(prompts)]


def whole(value):
    """A web form's integral float (`4.0`) as an int, for the argument checks; anything else unchanged."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def build_demo(
    pipe: Optional[NS2Pipeline],
    model_name: str = DEFAULT_MODEL,
    problem: Optional[str] = None,
) -> gr.Blocks:
    """The demo's `gr.Blocks` around `pipe`. The synthesis endpoint is `api_name="synthesize"`:
    `(text, prompt_path, steps, seed, speed, temperature, match_prompt_pitch, match_prompt_spectrum, takes)` →
    `(audio, mel figure, status markdown)`.

    Args:
        pipe: the pipeline to run; None when the model could not be loaded (the page shows `problem`, and
            every request is answered with it).
        model_name: what the status line calls the model.
        problem: set when `pipe` is the random-weight stand-in or None; shown as a warning on the page.

    The pipeline's aligner (a release folder's `aligner/` subfolder) chooses among takes and drives the voice
    conversion and enhancement tabs (`mode_tabs`); without one the takes stay at one and those tabs say so.
    """
    aligner = None if pipe is None else pipe.aligner
    default_takes = 1 if aligner is None else int(pipe.model.config.num_candidates)
    if pipe is None:
        weights, default_temperature = "not loaded", 1.44
    else:
        pipe.set_progress_bar_config(disable=True)
        weights = "random weights (untrained stand-in)" if problem else "trained weights"
        default_temperature = round(float(pipe.scheduler.config.temperature), 2)

    def synthesize(text, prompt_path, steps, seed, speed, temperature, match_prompt_pitch=False, match_prompt_spectrum=False,
                   takes=None):
        if pipe is None:
            raise gr.Error(f"No model is loaded, so nothing can be synthesized: {problem}")
        text = (text or "").strip()
        if not text:
            raise gr.Error("Please type some text to speak.")
        if len(text) > MAX_TEXT_CHARS:
            raise gr.Error(f"The text is {len(text)} characters long; this demo takes at most {MAX_TEXT_CHARS}.")
        if not prompt_path:
            raise gr.Error("Please give a voice prompt: upload or record 3–10 seconds of the voice to imitate.")
        steps, seed, takes = whole(steps), whole(0 if seed is None else seed), whole(default_takes if takes is None else takes)
        started = time.perf_counter()
        try:
            check_generation_arguments(text, steps, speed, temperature, seed)  # the API's and the CLI's message
            output = speak_long_text(  # sentence by sentence: a paragraph costs no more per word than a sentence
                pipe, text, prompt_path, seed=seed, num_inference_steps=steps, temperature=temperature, speed=speed,
                match_prompt_pitch=bool(match_prompt_pitch), spectrum_matching=1.0 if match_prompt_spectrum else None,
                num_candidates=takes, progress=False,
            )
            check_generated_audio(output.audio)
        except AudioInputError as error:  # name the upload as the visitor knows it, not by its server path
            message = str(error).replace(str(prompt_path), Path(prompt_path).name)
            raise gr.Error(f"The voice prompt cannot be used: {message}") from error
        except USER_ERRORS as error:
            raise gr.Error(str(error)) from error
        elapsed = time.perf_counter() - started
        audio, sampling_rate = output.audio, output.sampling_rate
        seconds = len(audio) / sampling_rate
        status = (
            f"**Model:** `{model_name}` · {weights} · **synthesis:** {elapsed:.2f} s for {seconds:.2f} s of audio "
            f"(real-time factor {elapsed / max(seconds, 1e-9):.2f}) · {len(output.chunks)} chunk(s) · {steps} steps, seed {seed}"
            f"{f' · best of {takes} takes' if takes > 1 else ''}"
        )
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
        return (sampling_rate, pcm), mel_figure(audio, sampling_rate, pipe.hop_length), status

    with gr.Blocks(title="NaturalSpeech 2 — zero-shot TTS") as demo:
        gr.Markdown(DESCRIPTION)
        if pipe is None:
            gr.Markdown(f"⚠️ **The model could not be loaded, so this demo cannot speak.** ({problem})", elem_id="load-error")
        elif problem:
            gr.Markdown(
                f"⚠️ **No trained model: this demo runs random weights, so the output is noise, not speech.** "
                f"({problem})",
                elem_id="fallback-warning",
            )
        with gr.Row():
            with gr.Column():
                text = gr.Textbox(label="Text", lines=3, max_length=MAX_TEXT_CHARS, placeholder="Type what the voice should say.")
                prompt = gr.Audio(
                    label="Voice prompt (3–10 s)", sources=["upload", "microphone"], type="filepath", elem_id="prompt-audio"
                )
                with gr.Accordion("Advanced settings", open=False):
                    steps = gr.Slider(2, 200, value=DEFAULT_STEPS, step=1, label="Diffusion steps (paper: 150)")
                    seed = gr.Number(value=0, precision=0, label="Seed")
                    speed = gr.Slider(0.5, 2.0, value=1.0, step=0.05, label="Speed (> 1 speaks faster)")
                    temperature = gr.Slider(
                        0.5, max(100.0, default_temperature), value=default_temperature, step=0.01,
                        label="Temperature τ (initial noise N(0, 1/τ); paper 1.44; higher = less varied, clearer)",
                    )
                    match_pitch = gr.Checkbox(
                        value=False, label="Match the prompt's pitch register exactly (by default the shipped model keeps "
                        "the voice within ×1.1 of the prompt's pitch)",
                    )
                    match_spectrum = gr.Checkbox(
                        value=False, label="Match the prompt's recording: equalise the speech towards the prompt's spectrum "
                        "(its microphone, room and tone; nearer a real recording's sound, sometimes less clear)",
                    )
                    takes = gr.Slider(
                        1, MAX_TAKES, value=default_takes, step=1, interactive=aligner is not None,
                        label="Takes: synthesize this many and keep the one the aligner hears say the text most clearly "
                        "(fewer misread words; each take costs a synthesis)" + ("" if aligner else " — needs the model's aligner"),
                    )
                button = gr.Button("Synthesize", variant="primary", elem_id="synthesize-button")
            with gr.Column():
                speech = gr.Audio(label="Speech", type="numpy", interactive=False, elem_id="output-audio")
                mel = gr.Plot(label="Mel spectrogram of the speech")
                status = gr.Markdown(f"**Model:** `{model_name}` · {weights} · ready", elem_id="status")
        gr.Examples(examples=example_rows(), inputs=[text, prompt], label="Example sentences and voices")
        button.click(
            synthesize, inputs=[text, prompt, steps, seed, speed, temperature, match_pitch, match_spectrum, takes],
            outputs=[speech, mel, status],
            api_name="synthesize",
        )
        if pipe is not None:
            mode_tabs(pipe, aligner, model_name, weights)
    return demo


def pcm16(audio: np.ndarray):
    return (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)


def source_mode_tab(title: str, prefix: str, run, aligner: Optional[NS2AlignerModel], intro: str, labels: Tuple[str, ...]) -> None:
    """A tab for a mode that re-renders a source recording with a voice prompt (conversion, enhancement):
    source, prompt, optional transcript, strength, steps → audio and status. Elements are `#{prefix}-source`,
    `-prompt`, `-transcript`, `-button`, `-output`, `-status`; the endpoint is `api_name=prefix`'s mode."""
    source_label, prompt_label, strength_label, button_label = labels
    with gr.Tab(title, id=f"tab-{prefix}"):
        gr.Markdown(intro)
        with gr.Row():
            with gr.Column():
                source = gr.Audio(label=source_label, sources=["upload", "microphone"], type="filepath", elem_id=f"{prefix}-source")
                prompt = gr.Audio(label=prompt_label, sources=["upload", "microphone"], type="filepath", elem_id=f"{prefix}-prompt")
                transcript = gr.Textbox(
                    label="What the speech says (optional: empty = the offline ASR's transcript)", elem_id=f"{prefix}-transcript"
                )
                strength = gr.Slider(0.1, 1.0, value=0.8, step=0.05, label=strength_label)
                steps = gr.Slider(2, 200, value=DEFAULT_STEPS, step=1, label="Diffusion steps")
                button = gr.Button(button_label, variant="primary", elem_id=f"{prefix}-button")
            with gr.Column():
                output = gr.Audio(label="Result", type="numpy", interactive=False, elem_id=f"{prefix}-output")
                ready = "ready" if aligner else "⚠️ this model folder has no aligner/: this mode is off"
                status = gr.Markdown(ready, elem_id=f"{prefix}-status")
        button.click(run, [source, prompt, transcript, strength, steps], [output, status], api_name=run.__name__)


def mode_tabs(pipe: NS2Pipeline, aligner: Optional[NS2AlignerModel], model_name: str, weights: str) -> None:
    """Tabs for the paper's other modes, under the text-to-speech form: voice conversion
    (`api_name="convert"`), speech enhancement (`"enhance"`) and singing from a MIDI score (`"sing"`).
    Each returns `(audio, status markdown)`."""
    converter = NS2VoiceConversionPipeline.from_pipe(pipe, aligner=aligner)
    enhancer = NS2SpeechEnhancementPipeline.from_pipe(pipe, aligner=aligner)

    def run(mode, call, *paths):
        """`call()`'s audio and a status line; bad input becomes a message on the page."""
        if not all(paths):
            raise gr.Error("Please give every audio input (upload or record).")
        started = time.perf_counter()
        try:
            output = call()
        except (*USER_ERRORS, ValueError) as error:
            message = str(error)
            for path in paths:
                message = message.replace(str(path), Path(path).name)
            raise gr.Error(message) from error
        audio = output.audios[0]
        status = f"**Model:** `{model_name}` · {weights} · **{mode}:** {time.perf_counter() - started:.2f} s"
        if getattr(output, "transcripts", None):
            status += f" · phonemes of: “{output.transcripts[0]}”"
        return (output.sampling_rate, pcm16(audio)), status

    def convert(source, prompt, transcript, strength, steps):
        return run("conversion", lambda: converter(
            source, prompt, transcript=(transcript or "").strip() or None, strength=float(strength), num_inference_steps=int(steps)
        ), source, prompt)

    def enhance(noisy, prompt, transcript, strength, steps):
        return run("enhancement", lambda: enhancer(
            noisy, prompt, transcript=(transcript or "").strip() or None, strength=float(strength),
            num_inference_steps=int(steps), generator=torch.Generator().manual_seed(0),
        ), noisy, prompt)

    def sing(score, lyrics, prompt, steps):
        from ns2_hf.singing import load_score

        def call():
            conditions = load_score(score, pipe.tokenizer, pipe.sampling_rate / pipe.hop_length, lyrics=(lyrics or "").strip() or None)
            return pipe(conditions.text, prompt_audio=prompt, durations=[conditions.durations], pitch=[conditions.f0],
                        num_inference_steps=int(steps), generator=torch.Generator().manual_seed(0))

        return run("singing", call, score, prompt)

    with gr.Tabs():
        source_mode_tab(
            "Voice conversion", "vc", convert, aligner,
            intro="Say what the **source** says — its words, timing and melody — in the **target** voice.",
            labels=("Source speech", "Target voice (3–10 s)", "Strength (how far toward noise the source goes)", "Convert"),
        )
        source_mode_tab(
            "Speech enhancement", "se", enhance, aligner,
            intro="Re-render **noisy** speech cleanly, given a few **clean** seconds of the same voice.",
            labels=("Noisy speech", "Clean voice prompt (3–10 s)", "Strength (higher removes more noise)", "Enhance"),
        )
        with gr.Tab("Singing", id="tab-sing"):
            gr.Markdown("Sing a **MIDI** melody (first instrument, one note at a time) with one lyric word per note; "
                        "`-` holds the previous word over a further note.")
            with gr.Row():
                with gr.Column():
                    score = gr.File(label="Score (.mid)", file_types=[".mid", ".midi"], type="filepath", elem_id="sing-score")
                    lyrics = gr.Textbox(label="Lyrics, one word per note (empty = the file's lyric events)", elem_id="sing-lyrics")
                    voice = gr.Audio(label="Voice prompt (3–10 s)", sources=["upload", "microphone"], type="filepath", elem_id="sing-prompt")
                    steps = gr.Slider(2, 200, value=DEFAULT_STEPS, step=1, label="Diffusion steps")
                    button = gr.Button("Sing", variant="primary", elem_id="sing-button")
                with gr.Column():
                    output = gr.Audio(label="Song", type="numpy", interactive=False, elem_id="sing-output")
                    status = gr.Markdown("ready", elem_id="sing-status")
            button.click(sing, [score, lyrics, voice, steps], [output, status], api_name="sing")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="NaturalSpeech 2 zero-shot TTS demo (Gradio).")
    parser.add_argument(
        "--model",
        default=os.environ.get("NS2_MODEL"),
        help="pipeline folder, shipped model name or Hub repo id (default: $NS2_MODEL, else the shipped ns2-tiny-en)",
    )
    parser.add_argument("--host", default=None, help="address to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: $GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    parser.add_argument("--untrained", action="store_true", help="run a random-weight tiny pipeline (plumbing check)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: $NS2_NUM_THREADS, else 1; see ns2_hf.threads)")
    args = parser.parse_args(argv)
    print(f"[demo] threads: {apply_num_threads(args.threads)}", flush=True)

    pipe, model_name, problem = load_pipeline(args.model, untrained=args.untrained)
    if pipe is not None:
        pipe = pipe.to("cuda" if torch.cuda.is_available() else "cpu")
    demo = build_demo(pipe, model_name, problem)
    demo.queue(default_concurrency_limit=1, max_size=16)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share)


if __name__ == "__main__":
    main()
