"""Fuzz: a few hundred random argument combinations, good and bad, fed to the pipeline and to `ns2-tts`.
Each must end in a clear error of the project's own types (`USER_ERRORS`; for the CLI exit code 2 with a
one-line message, or argparse's usage error) or in finite, non-silent audio — never a library's traceback,
never exit 0 with garbage, and never a change to the prompt file."""

import contextlib
import io
import math
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ns2_hf.cli import main as cli
from ns2_hf.pipelines import build_untrained_pipeline
from ns2_hf.pipelines.arguments import USER_ERRORS

EXAMPLE_PROMPT = Path(__file__).resolve().parents[1] / "examples" / "prompt.wav"
PIPELINE_CASES = 200
CLI_CASES = 150

TEXTS = ["Hello there.", "", "   ", "a", "1984 was 42% odd.", "Dr. Smith's café — naïve?", "🙂", "\x00\x01",
         "word " * 40, "¿Qué?", "Hi!\nNew line.", ["One.", "Two words."], [], [""], ["ok", 5]]
STEPS = [2, 3, 0, -1, 1, 2.5, True, 1001, "4", None]
SPEEDS = [1.0, 0.5, 2, 3.9, 100, 0, -1, math.inf, math.nan, "fast", None, np.float32(1.5)]
TEMPERATURES = [None, 1.44, 25, 1000, 0.01, 0, -1, math.inf, math.nan, 1e-9, "hot"]


def prompts(rng):
    """(prompt_audio, prompt_sampling_rate) pairs: usable, and each kind of unusable."""
    voice = np.sin(np.linspace(0, 3000, 32000)).astype(np.float32) * 0.3 * rng.uniform(0.1, 1)
    return [
        (str(EXAMPLE_PROMPT), None),
        (voice, 16000),
        (voice, 22050),
        (np.stack([voice, voice]), 16000),
        (np.zeros(32000, dtype=np.float32), 16000),
        (voice[:2000], 16000),
        (np.full(32000, np.nan, dtype=np.float32), 16000),
        (voice, None),
        ("/no/such/prompt.wav", None),
    ]


def test_pipeline_gives_a_clear_error_or_finite_audio():
    pipe = build_untrained_pipeline("tiny", seed=0)
    pipe.set_progress_bar_config(disable=True)
    rng = random.Random(0)
    outcomes = {"audio": 0, "error": 0}
    for case in range(PIPELINE_CASES):
        text, steps, speed, temperature = (rng.choice(values) for values in (TEXTS, STEPS, SPEEDS, TEMPERATURES))
        prompt_audio, prompt_sampling_rate = rng.choice(prompts(rng))
        if case % 3 == 0:  # a third of the cases valid apart from one drawn argument: reach synthesis often
            prompt_audio, prompt_sampling_rate = rng.choice(prompts(rng)[:3])
            text, steps, speed, temperature = rng.choice([(text, 2, 1.0, None), ("Hello there.", steps, 1.0, None),
                                                          ("Hello there.", 2, speed, 1.44), ("Hello there.", 2, 1.2, temperature)])
        arguments = dict(prompt_audio=prompt_audio, prompt_sampling_rate=prompt_sampling_rate, num_inference_steps=steps,
                         speed=speed, temperature=temperature, generator=torch.Generator().manual_seed(case))
        try:
            output = pipe(text, **arguments)
        except USER_ERRORS as error:
            assert str(error), (text, arguments)
            outcomes["error"] += 1
            continue
        for audio in output.audios:
            assert len(audio) > 0 and np.isfinite(audio).all(), (text, arguments)
        outcomes["audio"] += 1
    assert min(outcomes.values()) >= PIPELINE_CASES // 10, outcomes  # both outcomes were exercised


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    build_untrained_pipeline("tiny", seed=0).save_pretrained(root / "pipe")
    shutil.copytree(root / "pipe", root / "corrupt")
    weights = root / "corrupt" / "codec" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    shutil.copy(EXAMPLE_PROMPT, root / "prompt.wav")
    sf.write(root / "silent.wav", np.zeros(32000, dtype=np.float32), 16000)
    (root / "broken.wav").write_bytes(b"RIFF" + b"garbage" * 50)
    return root


def test_cli_exits_2_with_one_line_or_0_with_finite_speech(cli_files, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root, rng = cli_files, random.Random(1)
    prompt_bytes = (root / "prompt.wav").read_bytes()
    choices = {
        "--model": [str(root / "pipe")] * 4 + ["nope-model", str(root / "corrupt"), str(root / "missing"), "a/b/c"],
        "--text": ["Hello there.", "", "  ", "🙂", "Numbers 1 2 3.", "-5", "x" * 300],
        "--prompt": [str(root / "prompt.wav")] * 4 + [str(root / "silent.wav"), str(root / "broken.wav"),
                                                      str(root / "none.wav"), str(root)],
        "--steps": ["2", "3", "0", "-3", "abc", "2.5", "1e3", "100000"],
        "--speed": ["1", "0.8", "100", "inf", "nan", "-1", "0", "x"],
        "--temperature": ["1.44", "25", "0", "-1", "inf", "nan", "1e-300"],
        "--seed": ["0", "7", "-1", str(2**70), "abc"],
    }
    outcomes = {0: 0, 2: 0}
    for case in range(CLI_CASES):
        outs = [root / f"out_{case}.wav", root / f"out_{case}.flac", root / "missing" / "o.wav", root,
                root / f"out_{case}", root / "prompt.wav"]
        if case % 2 == 0:  # half the cases valid apart from one flag (or none), so synthesis is reached often
            odd_one = rng.choice([*choices, "--out", None])
            out = rng.choice(outs) if odd_one == "--out" else outs[case % 4 // 2]
            chosen = {flag: rng.choice(values) if flag == odd_one else values[0] for flag, values in choices.items()}
        else:
            out = rng.choice(outs)
            chosen = {flag: rng.choice(values) for flag, values in choices.items()
                      if flag in ("--text", "--prompt", "--model") or rng.random() < 0.5}
        argv = [f"--out={out}", "--device=cpu", *(f"{flag}={value}" for flag, value in chosen.items())]
        stderr, stdout = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
            try:
                code = cli(argv)
            except SystemExit as exit_:  # argparse: usage line + message, exit 2
                code = exit_.code
                assert code == 2 and "usage: ns2-tts" in stderr.getvalue(), argv
        assert "Traceback" not in stderr.getvalue(), argv
        if code == 0:
            audio, _ = sf.read(out, dtype="float32")
            assert len(audio) > 0 and np.isfinite(audio).all() and np.ptp(audio) > 0, argv
        else:
            assert code == 2, argv
            assert "[ns2-tts] error:" in stderr.getvalue() or "usage: ns2-tts" in stderr.getvalue(), argv
            assert not Path(out).is_file() or Path(out) == root / "prompt.wav", argv
        outcomes[code] += 1
    assert (root / "prompt.wav").read_bytes() == prompt_bytes
    assert min(outcomes.values()) >= CLI_CASES // 10, outcomes
