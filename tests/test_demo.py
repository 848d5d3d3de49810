"""demo/app.py over real HTTP: the app runs as its own process (`--model` = a saved tiny random pipeline, a
free localhost port) and is driven with `gradio_client`, as a Space visitor's browser or script would."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from demo.app import build_demo, load_pipeline
from ns2_hf.alignment import NS2AlignerConfig, NS2AlignerModel
from ns2_hf.pipelines import NS2Pipeline, build_untrained_pipeline

REPO_ROOT = Path(__file__).resolve().parents[1]
APP = REPO_ROOT / "demo" / "app.py"
EXAMPLE_PROMPT = REPO_ROOT / "demo" / "examples" / "flite_slt.wav"
TEXT = "The birch canoe slid on the smooth planks."
STEPS = 4
STARTUP_SECONDS = 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"demo/app.py exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"demo/app.py did not answer at {url} within {STARTUP_SECONDS} s:\n{log_path.read_text()}")


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    """A saved tiny random pipeline with a random aligner (which the takes need)."""
    path = tmp_path_factory.mktemp("demo") / "ns2-tiny-random"
    pipe = build_untrained_pipeline("tiny", seed=0)
    pipe.register_modules(aligner=NS2AlignerModel(NS2AlignerConfig.tiny(vocab_size=len(pipe.tokenizer))).eval())
    pipe.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def client(pipeline_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("server")
    port = free_port()
    # --model must win over NS2_MODEL; offline, so a wrong pick would fall back visibly (checked below)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "NS2_MODEL": "nobody/not-this-model",
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    log_path = work / "server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, str(APP), "--model", str(pipeline_dir), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work,
        )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_http(url, process, log_path)
        yield Client(url, verbose=False, download_files=str(work / "downloads"))
    finally:
        process.terminate()
        process.wait(timeout=30)


def synthesize(client, text=TEXT, prompt=EXAMPLE_PROMPT, seed=0, speed=1.0, temperature=1.44, match_prompt_pitch=False,
               match_prompt_spectrum=False, takes=1):
    return client.predict(text, handle_file(str(prompt)), STEPS, seed, speed, temperature, match_prompt_pitch,
                          match_prompt_spectrum, takes, api_name="/synthesize")


def test_synthesis_over_http_matches_the_pipeline_run_in_process(client, pipeline_dir):
    audio_path, _, status = synthesize(client, seed=3, temperature=2.0)
    audio, sampling_rate = sf.read(audio_path, dtype="float32")
    assert sampling_rate == 16000
    assert 0.1 < len(audio) / sampling_rate < 60
    assert f"`{pipeline_dir}` · trained weights" in status and "synthesis" in status and f"{STEPS} steps, seed 3" in status

    # the same text, prompt, seed, steps and temperature run here give the same speech (to 16-bit rounding)
    pipe = NS2Pipeline.from_pretrained(pipeline_dir)
    pipe.set_progress_bar_config(disable=True)
    expected = pipe(
        TEXT, prompt_audio=str(EXAMPLE_PROMPT), num_inference_steps=STEPS, generator=torch.Generator().manual_seed(3), temperature=2.0
    ).audios[0]
    assert len(audio) == len(expected)
    np.testing.assert_allclose(audio, np.clip(expected, -1, 1), atol=2 / 32767)


def test_seed_speed_and_pitch_matching_reach_the_pipeline(client):
    first, _, _ = synthesize(client, seed=1)
    other, _, _ = synthesize(client, seed=2)
    faster, _, _ = synthesize(client, seed=1, speed=2.0)
    first, other, faster = (sf.read(path, dtype="float32")[0] for path in (first, other, faster))
    assert len(first) != len(other) or not np.allclose(first, other)
    assert len(faster) < len(first)
    matched, _, _ = synthesize(client, seed=1, match_prompt_pitch=True)  # the contour moves: same length, other audio
    matched = sf.read(matched, dtype="float32")[0]
    assert len(matched) == len(first) and not np.allclose(matched, first)


def test_matching_the_prompts_recording_reaches_the_pipeline(client, pipeline_dir):
    """The checkbox is `spectrum_matching=1`: the same speech as the pipeline run here with it, not the plain one."""
    equalised, _, _ = synthesize(client, seed=1, temperature=2.0, match_prompt_spectrum=True)
    equalised = sf.read(equalised, dtype="float32")[0]
    pipe = NS2Pipeline.from_pretrained(pipeline_dir)
    pipe.set_progress_bar_config(disable=True)

    def speak(**kwargs):
        return pipe(TEXT, prompt_audio=str(EXAMPLE_PROMPT), num_inference_steps=STEPS, temperature=2.0,
                    generator=torch.Generator().manual_seed(1), **kwargs).audios[0]

    expected, plain = speak(spectrum_matching=1.0), speak()
    np.testing.assert_allclose(equalised, np.clip(expected, -1, 1), atol=2 / 32767)
    assert np.abs(expected - plain).max() > 10 / 32767


def test_takes_reach_the_pipeline(client, pipeline_dir):
    """The takes slider is `num_candidates`: three takes give the one of the pipeline's three samples that the
    folder's aligner scores best, and the status says so."""
    best, _, status = synthesize(client, seed=4, temperature=2.0, takes=3)
    assert "best of 3 takes" in status
    best = sf.read(best, dtype="float32")[0]
    pipe = NS2Pipeline.from_pretrained(pipeline_dir)
    pipe.set_progress_bar_config(disable=True)
    takes = pipe(TEXT, prompt_audio=str(EXAMPLE_PROMPT), num_inference_steps=STEPS, temperature=2.0, num_waveforms_per_prompt=3,
                 generator=torch.Generator().manual_seed(4)).audios
    phoneme_ids = pipe.encode_text([TEXT])[0]
    mismatch = [pipe.aligner.text_mismatch(phoneme_ids, torch.from_numpy(take)) for take in takes]
    np.testing.assert_allclose(best, np.clip(takes[int(np.argmin(mismatch))], -1, 1), atol=2 / 32767)


def test_empty_text_is_a_readable_error(client):
    with pytest.raises(AppError, match="Please type some text to speak"):
        synthesize(client, text="   ")


def test_silent_prompt_is_a_readable_error(client, tmp_path):
    sf.write(tmp_path / "silence.wav", np.zeros(32000, dtype=np.float32), 16000)
    with pytest.raises(AppError, match="The voice prompt cannot be used: .*silent"):
        synthesize(client, prompt=tmp_path / "silence.wav")


def test_too_short_prompt_is_a_readable_error(client, tmp_path):
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, 3200).astype(np.float32)  # 0.2 s
    sf.write(tmp_path / "short.wav", noise, 16000)
    with pytest.raises(AppError, match="too short"):
        synthesize(client, prompt=tmp_path / "short.wav")


def test_unreadable_prompt_is_a_readable_error(client, tmp_path):
    (tmp_path / "broken.wav").write_bytes(b"RIFF" + b"not audio" * 100)
    with pytest.raises(AppError, match="The voice prompt cannot be used: .*cannot decode"):
        synthesize(client, prompt=tmp_path / "broken.wav")


def test_random_weights_only_when_asked_for_and_then_with_a_visible_warning(tmp_path):
    pipe, name, problem = load_pipeline(str(tmp_path / "no-such-model"))
    assert pipe is None and name == str(tmp_path / "no-such-model") and "no-such-model" in problem
    pipe, name, problem = load_pipeline(None, untrained=True)
    assert isinstance(pipe, NS2Pipeline) and "--untrained" in problem
    demo = build_demo(pipe, name, problem)
    page_text = json.dumps(demo.config)
    assert "random weights" in page_text and "output is noise" in page_text
    loaded = build_demo(pipe, "ns2-tiny-en", None)
    assert "output is noise" not in json.dumps(loaded.config)
