"""Nothing lost, nothing silent: bad weights, unknown model names, out-of-range arguments and dangerous output
paths get a clear error of the project's own types (naming the file or the argument) in the API, `ns2-tts`
and the demo — before any heavy work — and outputs are written whole or not at all."""

import fnmatch
import math
import shutil
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file, save_file

from demo.app import build_demo, load_pipeline
from ns2_hf.audio.output import OutputPathError, check_output_path, write_audio
from ns2_hf.cli import main as cli
from ns2_hf.codec import NS2CodecModel
from ns2_hf.pipelines import NS2Pipeline, build_untrained_pipeline
from ns2_hf.pipelines.arguments import GenerationArgumentError, check_generation_arguments
from ns2_hf.pipelines.loading import PIPELINE_FILE_PATTERNS, ModelLoadError, load_model

EXAMPLE_PROMPT = Path(__file__).resolve().parents[1] / "examples" / "prompt.wav"


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("robust") / "pipe"
    build_untrained_pipeline("tiny", seed=0).save_pretrained(path)
    return path


@pytest.fixture
def broken(pipeline_dir, tmp_path):
    """A fresh copy of the saved tiny pipeline to damage."""
    return Path(shutil.copytree(pipeline_dir, tmp_path / "broken"))


@pytest.fixture
def prompt(tmp_path):
    """A copy of the example prompt (tests may try to overwrite it)."""
    return Path(shutil.copy(EXAMPLE_PROMPT, tmp_path / "prompt.wav"))


# ---------------------------------------------------------------------------------------------------
# 1. weights: corrupt, truncated, pickle, wrong keys, unknown names, Hub filter
# ---------------------------------------------------------------------------------------------------
def test_random_bytes_in_the_data_region_are_refused_naming_the_file_and_tensor(broken):
    path = broken / "model" / "model.safetensors"
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match=rf"{path}.*NaN or infinite"):
        NS2Pipeline.from_pretrained(broken)


def test_truncated_weights_are_refused_naming_the_file(broken):
    path = broken / "codec" / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(ModelLoadError, match=rf"{path} is not a readable safetensors file"):
        NS2Pipeline.from_pretrained(broken)


def test_pickle_weights_are_never_loaded(broken):
    weights = load_file(broken / "model" / "model.safetensors")
    torch.save(weights, broken / "model" / "pytorch_model.bin")
    (broken / "model" / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="pytorch_model.bin, a pickle format ns2-hf never loads"):
        NS2Pipeline.from_pretrained(broken)


def test_missing_and_unexpected_keys_are_refused(broken):
    path = broken / "codec" / "model.safetensors"
    weights = load_file(path)
    dropped = sorted(weights)[0]
    weights["renamed." + dropped] = weights.pop(dropped)
    save_file(weights, path, metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match=rf"1 missing weight\(s\) \['{dropped}'\], 1 unexpected"):
        NS2Pipeline.from_pretrained(broken)
    with pytest.raises(ModelLoadError, match="1 missing weight"):  # a component alone (training scripts)
        load_model(NS2CodecModel, broken / "codec")


@pytest.mark.parametrize("name", ["nope-model", "/abs/missing/dir", "runs/ns2/best"])
def test_an_unknown_model_name_is_an_error_not_random_weights(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match=rf"model '{name}' not found: there is no such folder"):
        NS2Pipeline.from_pretrained(name)


def test_hub_downloads_take_only_configs_and_safetensors(pipeline_dir, monkeypatch, tmp_path):
    import huggingface_hub

    asked = {}

    def fake_snapshot_download(repo_id, **kwargs):
        asked.update(kwargs, repo_id=repo_id)
        return str(pipeline_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    NS2Pipeline.from_pretrained("someone/ns2-model", revision="v1")
    assert asked["repo_id"] == "someone/ns2-model" and asked["revision"] == "v1"
    patterns = asked["allow_patterns"]
    wanted = [str(path.relative_to(pipeline_dir)) for path in pipeline_dir.rglob("*") if path.is_file()]
    assert all(any(fnmatch.fnmatch(name, pattern) for pattern in patterns) for name in wanted), wanted
    for unwanted in ("model/pytorch_model.bin", "model/model.pt", "samples/a.wav", "codec/weights.ckpt"):
        assert not any(fnmatch.fnmatch(unwanted, pattern) for pattern in patterns), unwanted
    assert patterns == PIPELINE_FILE_PATTERNS


# ---------------------------------------------------------------------------------------------------
# 2. arguments: one check, the same message in the API, the CLI and the demo, before any heavy work
# ---------------------------------------------------------------------------------------------------
BAD_ARGUMENTS = [
    ({"speed": 100.0}, "`speed` must be between"),
    ({"speed": math.inf}, "`speed` must be finite"),
    ({"speed": math.nan}, "`speed` must be finite"),
    ({"speed": 0.0}, "`speed` must be between"),
    ({"temperature": 0.0}, "`temperature` must be between"),
    ({"temperature": -1.0}, "`temperature` must be between"),
    ({"temperature": math.inf}, "`temperature` must be finite"),
    ({"num_inference_steps": 0}, "`num_inference_steps` must be between"),
    ({"prompt_guidance_scale": math.nan}, "`prompt_guidance_scale` must be finite"),
    ({"prompt_guidance_scale": 20.0}, "`prompt_guidance_scale` must be between"),
    ({"num_inference_steps": 2.5}, "`num_inference_steps` must be an integer"),
    ({"text": "   "}, "`text` is empty"),
]


def message_of(**arguments):
    with pytest.raises(GenerationArgumentError) as error:
        check_generation_arguments(**{"text": "Hello.", **arguments})
    return str(error.value)


@pytest.mark.parametrize("arguments, message", BAD_ARGUMENTS)
def test_pipeline_refuses_out_of_range_arguments_before_reading_the_prompt(arguments, message):
    pipe = build_untrained_pipeline("tiny")
    call = {"text": "Hello.", "num_inference_steps": 2, **arguments}
    # the prompt does not exist: the argument error must come first
    with pytest.raises(GenerationArgumentError, match=message):
        pipe(call.pop("text"), prompt_audio="/no/such/prompt.wav", **call)


def test_seed_range_is_what_torch_takes():
    assert "`seed` must be between 0 and 2**64 - 1" in message_of(seed=2**70)
    assert "`seed` must be a whole number" in message_of(seed=1.5)
    check_generation_arguments("Hello.", seed=2**64 - 1)
    torch.Generator().manual_seed(2**64 - 1)  # the top of the range is accepted by torch


@pytest.mark.parametrize("flag, value, arguments", [
    ("--speed", "100", {"speed": 100.0}),
    ("--speed", "inf", {"speed": math.inf}),
    ("--temperature", "0", {"temperature": 0.0}),
    ("--temperature", "-2", {"temperature": -2.0}),
    ("--seed", str(2**70), {"seed": 2**70}),
    ("--steps", "0", {"num_inference_steps": 0}),
])
def test_cli_refuses_bad_arguments_with_the_api_message_before_loading_the_model(
    flag, value, arguments, prompt, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(NS2Pipeline, "from_pretrained", lambda *a, **k: pytest.fail("model loaded before the checks"))
    code = cli(["--text", "Hello.", "--prompt", str(prompt), "--out", str(tmp_path / "o.wav"), flag, value])
    assert code == 2
    assert f"[ns2-tts] error: {message_of(**arguments)}" in capsys.readouterr().err
    assert not (tmp_path / "o.wav").exists()


@pytest.mark.parametrize("out, message", [
    ("prompt.wav", "is the voice prompt itself"),
    ("missing/o.wav", "does not exist; create it first"),
    (".", "is a folder"),
    ("speech", "no known audio extension"),
    ("speech.xyz", "no known audio extension"),
])
def test_cli_refuses_bad_output_paths_before_loading_the_model(out, message, prompt, monkeypatch, capsys):
    monkeypatch.chdir(prompt.parent)
    before = prompt.read_bytes()
    monkeypatch.setattr(NS2Pipeline, "from_pretrained", lambda *a, **k: pytest.fail("model loaded before the checks"))
    assert cli(["--text", "Hello.", "--prompt", str(prompt), "--out", out]) == 2
    assert message in capsys.readouterr().err
    assert prompt.read_bytes() == before


def test_cli_unknown_model_is_an_error_and_writes_nothing(prompt, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "o.wav"
    assert cli(["--model", "nope-model", "--text", "Hello.", "--prompt", str(prompt), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "model 'nope-model' not found" in error and "random weights" not in error
    assert not out.exists()


def test_cli_corrupt_model_is_an_error_and_writes_nothing(broken, prompt, tmp_path, capsys):
    path = broken / "codec" / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-10])
    out = tmp_path / "o.wav"
    assert cli(["--model", str(broken), "--text", "Hello.", "--prompt", str(prompt), "--out", str(out)]) == 2
    assert str(path) in capsys.readouterr().err and not out.exists()


def test_output_is_written_atomically(tmp_path, monkeypatch):
    out = tmp_path / "speech.flac"
    write_audio(out, np.full(1600, 0.25, dtype=np.float32), 16000)
    before = out.read_bytes()

    def crash(path, *args, **kwargs):
        Path(path).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(sf, "write", crash)
    with pytest.raises(OSError, match="disk full"):
        write_audio(out, np.zeros(1600, dtype=np.float32) + 0.5, 16000)
    assert out.read_bytes() == before
    assert [path.name for path in tmp_path.iterdir()] == ["speech.flac"]  # no partial file left behind
    monkeypatch.undo()
    with pytest.raises(OutputPathError, match="NaN/inf"):
        write_audio(out, np.array([0.1, np.nan], dtype=np.float32), 16000)
    assert out.read_bytes() == before
    assert check_output_path(out) == out  # an existing file other than the prompt may be replaced


# ---------------------------------------------------------------------------------------------------
# the demo: a broken model is said on the page; bad arguments get the API's message
# ---------------------------------------------------------------------------------------------------
def synthesize_function(demo):
    return next(function.fn for function in demo.fns.values() if function.api_name == "synthesize")


def test_demo_with_a_corrupt_model_says_so_and_synthesizes_nothing(broken):
    path = broken / "model" / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-10])
    pipe, name, problem = load_pipeline(str(broken))
    assert pipe is None and str(path) in problem
    demo = build_demo(pipe, name, problem)
    assert "could not be loaded" in str(demo.config) and "trained weights" not in str(demo.config)
    with pytest.raises(gr.Error, match="No model is loaded"):
        synthesize_function(demo)("Hello.", str(EXAMPLE_PROMPT), 2, 0, 1.0, 1.44)


@pytest.mark.parametrize("seed, speed, temperature, arguments", [
    (2**70, 1.0, 1.44, {"seed": 2**70}),
    (0, math.inf, 1.44, {"speed": math.inf}),
    (0, 1.0, -1.0, {"temperature": -1.0}),
])
def test_demo_gives_the_api_message_for_bad_arguments(pipeline_dir, seed, speed, temperature, arguments):
    pipe, name, problem = load_pipeline(str(pipeline_dir))
    synthesize = synthesize_function(build_demo(pipe, name, problem))
    with pytest.raises(gr.Error) as error:
        synthesize("Hello.", str(EXAMPLE_PROMPT), 2, seed, speed, temperature)
    assert error.value.message == message_of(**arguments)
