"""training/assemble_pipeline.py: swap in a decoder-fine-tuned codec, the sampling temperature and the
phone-duration floor."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import load_training_script
from ns2_hf.pipelines import NS2Pipeline
from ns2_hf.pipelines.pipeline_ns2 import build_untrained_pipeline
from ns2_hf.text import is_phone

PROMPT = Path(__file__).resolve().parents[1] / "examples" / "prompt.wav"


@pytest.fixture(scope="module")
def assemble_pipeline():
    return load_training_script("assemble_pipeline")


def _codec_variant(codec, prefix, tmp_path, name):
    """A copy of `codec` with one tensor under `prefix` changed, saved to tmp_path/name."""
    variant = copy.deepcopy(codec)
    tensor_name = next(name for name, _ in variant.named_parameters() if name.startswith(prefix))
    with torch.no_grad():
        variant.get_parameter(tensor_name).add_(0.05)
    variant.save_pretrained(tmp_path / name)
    return variant


def _synthesize(pipeline, output_type):
    pipeline.set_progress_bar_config(disable=True)
    return pipeline("Assembled.", str(PROMPT), num_inference_steps=3, generator=torch.Generator().manual_seed(0),
                    output_type=output_type).audios[0]


def test_assembled_pipeline_has_the_new_decoder_and_temperature(assemble_pipeline, tmp_path):
    source = build_untrained_pipeline("tiny")
    source.save_pretrained(tmp_path / "ns2")
    decoder_tuned = _codec_variant(source.codec, "decoder.", tmp_path, "codec")
    output = tmp_path / "release"
    output.mkdir()
    (output / "README.md").write_text("kept")
    assemble_pipeline.main(["--ns2", str(tmp_path / "ns2"), "--codec", str(tmp_path / "codec"), "--temperature", "25",
                            "--output", str(output)])

    released = NS2Pipeline.from_pretrained(output)
    assert (output / "README.md").read_text() == "kept"
    assert json.loads((output / "scheduler" / "scheduler_config.json").read_text())["temperature"] == 25.0
    assert "_name_or_path" not in json.loads((output / "model_index.json").read_text())
    for name, tensor in decoder_tuned.state_dict().items():
        assert torch.equal(released.codec.state_dict()[name], tensor)
    # same NS2 model and τ: the same latents; the new decoder turns them into different audio
    source.register_modules(scheduler=type(source.scheduler).from_config(source.scheduler.config, temperature=25.0))
    assert torch.equal(_synthesize(source, "latent"), _synthesize(released, "latent"))
    assert not np.allclose(_synthesize(source, "np"), _synthesize(released, "np"))

    # in place: the release folder is both input and output
    assemble_pipeline.main(["--ns2", str(output), "--temperature", "4", "--min_phone_frames", "5", "--output", str(output)])
    again = NS2Pipeline.from_pretrained(output)
    assert again.scheduler.config.temperature == 4.0 and (output / "README.md").read_text() == "kept"
    assert released.model.config.min_phone_frames == 1 and again.model.config.min_phone_frames == 5
    phone = torch.tensor([is_phone(token) for token in again.tokenizer.convert_ids_to_tokens(again.tokenizer("Assembled.")["input_ids"])])
    assert (again("Assembled.", str(PROMPT), num_inference_steps=3).durations[0][phone] >= 5).all()
    with pytest.raises(ValueError, match="min_phone_frames"):
        assemble_pipeline.main(["--ns2", str(output), "--min_phone_frames", "0", "--output", str(output)])
    assert again.model.config.pitch_register_tolerance is None
    assemble_pipeline.main(["--ns2", str(output), "--pitch_register_tolerance", "0.1", "--output", str(output)])
    assert NS2Pipeline.from_pretrained(output).model.config.pitch_register_tolerance == 0.1
    with pytest.raises(ValueError, match="pitch_register_tolerance"):
        assemble_pipeline.main(["--ns2", str(output), "--pitch_register_tolerance", "-1", "--output", str(output)])
    assemble_pipeline.main(["--ns2", str(output), "--pitch_register_tolerance", "none", "--output", str(output)])
    assert NS2Pipeline.from_pretrained(output).model.config.pitch_register_tolerance is None
    assert again.model.config.spectrum_matching == 0.0
    assemble_pipeline.main(["--ns2", str(output), "--spectrum_matching", "0.5", "--output", str(output)])
    assert NS2Pipeline.from_pretrained(output).model.config.spectrum_matching == 0.5
    with pytest.raises(ValueError, match="spectrum_matching"):
        assemble_pipeline.main(["--ns2", str(output), "--spectrum_matching", "2", "--output", str(output)])
    assert again.model.config.candidate_steps is None
    assemble_pipeline.main(["--ns2", str(output), "--num_candidates", "3", "--candidate_steps", "10", "--output", str(output)])
    config = NS2Pipeline.from_pretrained(output).model.config
    assert (config.num_candidates, config.candidate_steps) == (3, 10)
    with pytest.raises(ValueError, match="candidate_steps"):
        assemble_pipeline.main(["--ns2", str(output), "--candidate_steps", "1", "--output", str(output)])
    assemble_pipeline.main(["--ns2", str(output), "--candidate_steps", "none", "--output", str(output)])
    assert NS2Pipeline.from_pretrained(output).model.config.candidate_steps is None
    for name, tensor in released.model.state_dict().items():
        assert torch.equal(again.model.state_dict()[name], tensor)
    for name, tensor in decoder_tuned.state_dict().items():
        assert torch.equal(again.codec.state_dict()[name], tensor)


@pytest.mark.parametrize("prefix", ["encoder.", "quantizer."])
def test_a_codec_with_other_latents_is_refused_and_the_release_kept(assemble_pipeline, tmp_path, prefix):
    source = build_untrained_pipeline("tiny")
    source.save_pretrained(tmp_path / "ns2")
    if prefix == "quantizer.":  # codebooks are buffers (moving averages), not parameters
        variant = copy.deepcopy(source.codec)
        buffer_name = next(name for name, _ in variant.named_buffers() if name.startswith(prefix))
        variant.get_buffer(buffer_name).add_(0.05)
        variant.save_pretrained(tmp_path / "codec")
    else:
        _codec_variant(source.codec, prefix, tmp_path, "codec")
    output = tmp_path / "release"
    source.save_pretrained(output)
    before = sorted(str(path.relative_to(output)) for path in output.rglob("*"))
    with pytest.raises(ValueError, match="encoder/codebooks differ"):
        assemble_pipeline.assemble(str(tmp_path / "ns2"), str(output), codec=str(tmp_path / "codec"))
    assert sorted(str(path.relative_to(output)) for path in output.rglob("*")) == before


def test_a_fourier_decoder_on_the_same_latent_space_is_accepted_and_another_latent_space_refused(assemble_pipeline, tmp_path):
    from ns2_hf.codec import NS2CodecConfig, NS2CodecModel

    source = build_untrained_pipeline("tiny")
    source.save_pretrained(tmp_path / "ns2")
    trained = source.codec
    fourier = NS2CodecModel(NS2CodecConfig(**{**trained.config.to_dict(), "decoder_type": "fourier",
                                              "decoder_hidden_size": 32, "fourier_intermediate_size": 64}))
    fourier.encoder.load_state_dict(trained.encoder.state_dict())
    fourier.quantizer.load_state_dict(trained.quantizer.state_dict())
    fourier.save_pretrained(tmp_path / "fourier")
    released = assemble_pipeline.assemble(str(tmp_path / "ns2"), str(tmp_path / "release"), codec=str(tmp_path / "fourier"))
    assert released.codec.config.decoder_type == "fourier"
    reloaded = NS2Pipeline.from_pretrained(tmp_path / "release")
    assert reloaded.codec.config.decoder_type == "fourier"
    np.testing.assert_array_equal(_synthesize(reloaded, "latent"), _synthesize(source, "latent"))  # same latents

    other = NS2CodecModel(NS2CodecConfig(**{**trained.config.to_dict(), "num_quantizers": 4}))
    other.save_pretrained(tmp_path / "other")
    with pytest.raises(ValueError, match="encoder or quantizer config differs"):
        assemble_pipeline.assemble(str(tmp_path / "ns2"), str(tmp_path / "release2"), codec=str(tmp_path / "other"))
