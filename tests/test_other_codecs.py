"""Transformers' DAC, EnCodec and Mimi as NS2 latent spaces (`ns2_hf.latent_codecs`), each a tiny random-weight
model built from its config (nothing downloads), saved as a raw transformers checkpoint the way a Hub download
would be: prepare a few corpus utterances with it, a few NS2 training steps that lower the loss on one batch, the
pipeline saved and loaded exactly and speaking at the codec's own rate, CE-RVQ against a loop, and a codec of
another latent space refused."""

import csv
import json
import math
import os

import numpy as np
import pytest
import torch
from transformers import DacConfig, DacModel, EncodecConfig, EncodecModel, MimiConfig, MimiModel

from conftest import load_training_script
from ns2_hf.codec import NS2CodecFeatureExtractor
from ns2_hf.latent_codecs import ADAPTERS, NS2EncodecCodecConfig, NS2MimiCodecConfig, codec_latent_space
from ns2_hf.ns2 import NS2Config, NS2Model, NS2SpeechPrompter
from ns2_hf.ns2.losses import ce_rvq_loss
from ns2_hf.pipelines import NS2Pipeline
from ns2_hf.pipelines.loading import ModelLoadError, load_latent_codec
from ns2_hf.schedulers import NS2Scheduler
from ns2_hf.text import NS2PhonemeTokenizer
from training import prepare_dataset
from training.data import CODES, DURATIONS, PreparedDataset, collate_batch, load_prepared

SPEAKER = "fes_kal"  # a festival voice: the corpus has its reference alignments, so no aligner is trained here
UTTERANCES = 4

#: Tiny configs in the released checkpoints' shapes: DAC at 16 kHz (hop 320), EnCodec and Mimi at 24 kHz (hop 320,
#: and Mimi's 1920 at 12.5 frames/s). `codebook_std`: transformers initialises EnCodec's and Mimi's codebooks to
#: zero (a trained checkpoint fills them); random ones at the scale of the encoder's output give varied codes.
TINY_CODECS = {
    "dac": (DacModel, DacConfig(encoder_hidden_size=4, downsampling_ratios=[2, 4, 5, 8], decoder_hidden_size=32,
                                n_codebooks=4, codebook_size=32, codebook_dim=4, sampling_rate=16000), None),
    "encodec": (EncodecModel, EncodecConfig(sampling_rate=24000, num_filters=4, hidden_size=16, codebook_size=32,
                                            target_bandwidths=[1.5, 3.0], num_lstm_layers=1), 0.05),
    "mimi": (MimiModel, MimiConfig(sampling_rate=24000, hidden_size=32, num_filters=4, codebook_size=32,
                                   codebook_dim=16, vector_quantization_hidden_dimension=16, num_quantizers=4,
                                   num_hidden_layers=1, intermediate_size=32, num_attention_heads=2,
                                   num_key_value_heads=2, upsample_groups=32, sliding_window=16), 8.0),
}


def build_tiny_codec(name: str, seed: int = 0):
    """The raw transformers model of `TINY_CODECS[name]`, random weights and codebooks, in eval mode."""
    model_class, config, codebook_std = TINY_CODECS[name]
    torch.manual_seed(seed)
    model = model_class(config).eval()
    with torch.no_grad():
        if name == "encodec":
            for layer in model.quantizer.layers:
                layer.codebook.embed.normal_(std=codebook_std)
                layer.codebook.embed_avg.copy_(layer.codebook.embed)
        elif name == "mimi":
            for rvq in (model.quantizer.semantic_residual_vector_quantizer,
                        model.quantizer.acoustic_residual_vector_quantizer):
                for layer in rvq.layers:
                    layer.codebook.embed_sum.normal_(std=codebook_std)
                    layer.codebook._embed = None  # Mimi caches embed_sum / cluster_usage
    return model


@pytest.fixture(scope="module")
def audiofolder(corpus_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    (root / "audio").mkdir()
    with open(corpus_dir / "metadata.csv", newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["speaker_id"] == SPEAKER][:UTTERANCES]
    with open(root / "metadata.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for row in rows:
        os.symlink(corpus_dir / row["file_name"], root / row["file_name"])
    return root


@pytest.fixture(scope="module", params=list(TINY_CODECS))
def prepared(request, audiofolder, corpus_dir, tmp_path_factory):
    """`(name, codec folder, prepared dataset folder)`: the tiny codec saved as a transformers checkpoint, and the
    corpus prepared with it in one run (features at its rate and hop, reference durations, codes)."""
    name = request.param
    root = tmp_path_factory.mktemp(name)
    build_tiny_codec(name).save_pretrained(root / "codec")
    prepare_dataset.main(["--audiofolder", str(audiofolder), "--output_dir", str(root / "data"),
                          "--codec", str(root / "codec"), "--alignments_dir", str(corpus_dir / "alignments"),
                          "--holdout_speakers", "", "--validation_fraction", "0.25", "--batch_size", "3"])
    return name, root / "codec", root / "data"


def test_prepared_dataset_takes_rate_hop_and_codes_from_the_codec(prepared):
    name, codec_dir, data = prepared
    codec = load_latent_codec(codec_dir)
    config = codec.config
    assert json.loads((data / "prepare_info.json").read_text())["hop_length"] == config.hop_length
    dataset = load_prepared(data, required_columns=[DURATIONS, CODES])
    rows = list(dataset["train"]) + list(dataset["validation"])
    assert len(rows) == UTTERANCES
    for row in rows:
        audio = torch.from_numpy(np.asarray(row["audio"], np.float32) / 32768)
        assert row["sampling_rate"] == config.sampling_rate
        assert row["num_frames"] == math.ceil(len(audio) / config.hop_length) == sum(row["durations"])
        codes = torch.tensor(row["codes"])
        assert codes.shape == (config.num_quantizers, row["num_frames"])
        # encoded in a padded batch, the codes are the clip's own
        assert torch.equal(codes, codec.encode(audio[None]).audio_codes[0])
    assert len({code for row in rows for code in np.ravel(row["codes"])}) > config.codebook_size // 4


def test_an_aligner_trained_on_the_dataset_counts_the_codec_frames(prepared, audiofolder, tmp_path):
    _, codec_dir, data = prepared
    config = load_latent_codec(codec_dir).config
    aligner = load_training_script("train_aligner").main(
        ["--dataset", str(data), "--output_dir", str(tmp_path / "aligner"), "--size", "tiny", "--max_steps", "1"])
    assert (aligner.config.sampling_rate, aligner.config.hop_length) == (config.sampling_rate, config.hop_length)
    assert aligner.config.n_fft >= 4 * config.hop_length
    prepare_dataset.main(["--audiofolder", str(audiofolder), "--output_dir", str(tmp_path / "data"),
                          "--codec_config", str(codec_dir), "--aligner", str(tmp_path / "aligner"),
                          "--holdout_speakers", "", "--validation_fraction", "0.25"])
    rows = list(load_prepared(tmp_path / "data", required_columns=[DURATIONS])["train"])
    assert rows and all(sum(row["durations"]) == row["num_frames"] for row in rows)


def test_adapter_encodes_decodes_and_sums_its_codebooks(prepared):
    name, codec_dir, _ = prepared
    codec = load_latent_codec(codec_dir)
    config = codec.config
    audio = torch.randn(2, 3 * config.hop_length + 7) * 0.1
    padding_mask = torch.ones_like(audio, dtype=torch.bool)
    padding_mask[1, 2 * config.hop_length:] = False
    encoded = codec.encode(audio, padding_mask)
    assert encoded.latent_mask.sum(1).tolist() == [4, 2]
    alone = codec.encode(audio[1:, : 2 * config.hop_length])
    assert torch.equal(encoded.audio_codes[1, :, :2], alone.audio_codes[0])
    codebooks = codec.get_codebooks()
    assert codebooks.shape == (config.num_quantizers, config.codebook_size, config.latent_dim)
    summed = sum(codebooks[j][encoded.audio_codes[:, j]] for j in range(config.num_quantizers)).transpose(1, 2)
    torch.testing.assert_close(summed * encoded.latent_mask[:, None], encoded.quantized_latents, rtol=1e-4,
                               atol=1e-5 * float(summed.abs().max()))
    decoded = codec.decode(audio_codes=encoded.audio_codes, latent_mask=encoded.latent_mask).audio_values
    assert decoded.shape == (2, 4 * config.hop_length) and torch.isfinite(decoded).all()
    assert not decoded[1, 2 * config.hop_length:].any()
    assert codec_latent_space(codec) == {"model_type": f"ns2_{name}_codec", **config.latent_space()}


def test_ce_rvq_matches_a_loop_over_the_codec_own_dequantizer(prepared):
    """CE-RVQ with `get_codebooks()` equals a loop that asks the codec what each code adds to the latent."""
    _, codec_dir, _ = prepared
    codec = load_latent_codec(codec_dir)
    n_q, size = codec.config.num_quantizers, codec.config.codebook_size
    generator = torch.Generator().manual_seed(0)
    codes = torch.randint(0, size, (2, n_q, 5), generator=generator)
    frame_mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    latents = codec.codes_to_latents(codes)
    predicted = latents + torch.randn(latents.shape, generator=generator) * latents.std()

    losses = []
    for j in range(n_q):
        earlier = codec.codes_to_latents(codes[:, :j]) if j else torch.zeros_like(latents)
        candidates = []
        for k in range(size):  # the latent with code k at quantizer j, minus the earlier ones: what k adds
            with_k = codes[:, : j + 1].clone()
            with_k[:, j] = k
            candidates.append(codec.codes_to_latents(with_k) - earlier)
        distances = torch.stack([((predicted - earlier - c) ** 2).sum(1) for c in candidates], dim=1)  # (B, K, F)
        losses.append(torch.nn.functional.cross_entropy(-distances, codes[:, j], reduction="none"))
    expected = torch.stack(losses, 1)[frame_mask[:, None].expand(-1, n_q, -1)].mean()
    torch.testing.assert_close(ce_rvq_loss(predicted, codes, codec.get_codebooks(), frame_mask), expected,
                               rtol=1e-4, atol=1e-5)


def _tiny_model(codec, tokenizer, latent_scale: float) -> NS2Model:
    config = NS2Config.tiny(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                            latent_dim=codec.config.latent_dim, latent_scale=latent_scale,
                            codec_latent_space=codec_latent_space(codec))
    torch.manual_seed(0)
    return NS2Model(config)


def test_prompts_cut_by_codes_in_the_workers_give_the_latents_cut_from_latents(prepared):
    """train_ns2.py cuts prompts by codes in the DataLoader workers (`NS2TrainingPrompts`) and makes the latents on
    the device (`latents_from_codes`): for every codec the model gets what cutting the utterances' latents gives."""
    name, codec_dir, data = prepared
    train_ns2 = load_training_script("train_ns2")
    codec = load_latent_codec(codec_dir)
    dataset = load_prepared(data, required_columns=[DURATIONS, CODES])["train"]
    items = PreparedDataset(dataset, columns=("phoneme_ids", DURATIONS, "log_f0", "voiced", CODES))
    rows = [{**items[index], "batch_seed": 7} for index in range(len(items))]
    in_workers = train_ns2.latents_from_codes(train_ns2.NS2TrainingPrompts(0.1, 0.5, 0)(rows), codec)
    prompter = NS2SpeechPrompter(0.1, 0.5, generator=torch.Generator().manual_seed(7))
    from_latents = prompter(train_ns2.utterances_of(collate_batch(rows), codec))
    assert in_workers.keys() == from_latents.keys()
    for key, value in from_latents.items():
        torch.testing.assert_close(in_workers[key], value, rtol=1e-6, atol=1e-6, msg=key)
    assert bool(in_workers["prompt_mask"].any(1).all()) and len(rows) > 1


def test_ns2_trains_saves_loads_and_speaks_at_the_codec_rate(prepared, corpus_dir, tmp_path):
    name, codec_dir, data = prepared
    train_ns2 = load_training_script("train_ns2")
    codec = load_latent_codec(codec_dir)
    tokenizer = NS2PhonemeTokenizer.from_pretrained(str(data / prepare_dataset.TOKENIZER_DIR))
    dataset = load_prepared(data, required_columns=[DURATIONS, CODES])["train"]
    items = PreparedDataset(dataset, columns=("phoneme_ids", DURATIONS, "log_f0", "voiced", CODES))
    batch = collate_batch([items[index] for index in range(len(items))])
    utterances = train_ns2.utterances_of(batch, codec)
    latent_scale = float(1.0 / torch.cat([u["latents"] for u in utterances], dim=1).std())
    model = _tiny_model(codec, tokenizer, latent_scale)
    codebooks, scheduler = codec.get_codebooks(), NS2Scheduler()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)

    def loss_on_the_batch():  # the same prompt cuts, times and noise every step
        torch.manual_seed(1)
        prompter = NS2SpeechPrompter(0.1, 0.5, generator=torch.Generator().manual_seed(1),
                                     pad_token_id=tokenizer.pad_token_id)
        return model(**prompter(utterances), codebooks=codebooks, noise_scheduler=scheduler)

    model.train()
    first = loss_on_the_batch()
    for _ in range(8):
        loss = loss_on_the_batch().loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    last = loss_on_the_batch()
    assert last.loss < first.loss and last.ce_rvq_loss < first.ce_rvq_loss

    pipeline = NS2Pipeline(tokenizer=tokenizer, model=model.eval(), codec=codec, scheduler=scheduler,
                           feature_extractor=NS2CodecFeatureExtractor(sampling_rate=codec.config.sampling_rate))
    pipeline.set_progress_bar_config(disable=True)
    pipeline.save_pretrained(tmp_path / "pipeline")
    loaded = NS2Pipeline.from_pretrained(tmp_path / "pipeline")
    loaded.set_progress_bar_config(disable=True)
    assert type(loaded.codec) is ADAPTERS[name] and loaded.codec.config.latent_space() == codec.config.latent_space()
    for component in ("model", "codec"):
        expected, found = getattr(pipeline, component).state_dict(), getattr(loaded, component).state_dict()
        assert expected.keys() == found.keys() and all(torch.equal(expected[k], found[k]) for k in expected)

    prompt = corpus_dir / "audio" / f"{SPEAKER}_0005.flac"  # 16 kHz, resampled to the codec's rate
    durations = [torch.full((len(tokenizer("The birch canoe.")["input_ids"]),), 2)]
    outputs = [pipe("The birch canoe.", prompt_audio=str(prompt), num_inference_steps=2, durations=durations,
                    generator=torch.Generator().manual_seed(0)) for pipe in (pipeline, loaded)]
    assert outputs[0].sampling_rate == codec.config.sampling_rate == loaded.sampling_rate
    audio = outputs[0].audios[0]
    assert len(audio) == int(durations[0].sum()) * codec.config.hop_length and np.isfinite(audio).all()
    np.testing.assert_array_equal(audio, outputs[1].audios[0])


def test_a_codec_of_another_latent_space_is_refused(prepared, tmp_path):
    name, codec_dir, data = prepared
    codec = load_latent_codec(codec_dir)
    other = ADAPTERS[name].from_codec(build_tiny_codec(name), source="another/checkpoint")
    tokenizer = NS2PhonemeTokenizer.from_pretrained(str(data / prepare_dataset.TOKENIZER_DIR))
    components = dict(tokenizer=tokenizer, model=_tiny_model(codec, tokenizer, 1.0), scheduler=NS2Scheduler(),
                      feature_extractor=NS2CodecFeatureExtractor(sampling_rate=codec.config.sampling_rate))
    with pytest.raises(ValueError, match="source differ"):
        NS2Pipeline(codec=other, **components)
    NS2Pipeline(codec=codec, **components).save_pretrained(tmp_path / "pipeline")
    other.save_pretrained(tmp_path / "pipeline" / "codec")  # a folder whose codec was swapped
    with pytest.raises(ModelLoadError, match="trained on the latent space"):
        NS2Pipeline.from_pretrained(tmp_path / "pipeline")


def test_adapter_configs_check_the_codec_and_the_number_of_codebooks():
    encodec = TINY_CODECS["encodec"][1]
    assert NS2EncodecCodecConfig(codec_config=encodec).num_quantizers == 8
    assert NS2EncodecCodecConfig(codec_config=encodec, num_quantizers=4).bandwidth == 1.5
    with pytest.raises(ValueError, match="none of them"):
        NS2EncodecCodecConfig(codec_config=encodec, num_quantizers=5)
    with pytest.raises(ValueError, match="normalize"):
        NS2EncodecCodecConfig(codec_config=EncodecConfig(normalize=True, chunk_length_s=1.0, overlap=0.01))
    with pytest.raises(ValueError, match="mono"):
        NS2EncodecCodecConfig(codec_config=EncodecConfig(audio_channels=2))
    with pytest.raises(ValueError, match=r"in \[1, 4\]"):
        NS2MimiCodecConfig(codec_config=TINY_CODECS["mimi"][1], num_quantizers=5)
    config = NS2MimiCodecConfig(codec_config=TINY_CODECS["mimi"][1].to_dict(), num_quantizers=2)
    assert (config.sampling_rate, config.hop_length, config.frame_rate, config.latent_dim) == (24000, 1920, 12.5, 32)


@pytest.mark.slow
def test_train_ns2_script_runs_on_the_codec_and_its_best_pipeline_speaks(prepared, corpus_dir, tmp_path):
    import subprocess
    import sys

    from conftest import REPO_ROOT

    _, codec_dir, data = prepared
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               REPO_ROOT / "training" / "configs" / "accelerate_cpu.yaml", REPO_ROOT / "training" / "train_ns2.py",
               "--config", REPO_ROOT / "training" / "configs" / "ns2_tiny.yaml", "--dataset", data,
               "--codec", codec_dir, "--output_dir", tmp_path / "ns2", "--max_steps", "3", "--warmup_steps", "1",
               "--val_interval", "3", "--val_log_items", "1", "--val_inference_steps", "2",
               "--latent_scale_batches", "1"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run([str(part) for part in command], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    pipeline = NS2Pipeline.from_pretrained(tmp_path / "ns2" / "best")
    pipeline.set_progress_bar_config(disable=True)
    codec = load_latent_codec(codec_dir)
    assert pipeline.model.config.codec_latent_space == codec_latent_space(codec)
    output = pipeline("The birch canoe.", prompt_audio=str(corpus_dir / "audio" / f"{SPEAKER}_0005.flac"),
                      num_inference_steps=2, generator=torch.Generator().manual_seed(0))
    assert output.sampling_rate == codec.config.sampling_rate
    assert len(output.audios[0]) == int(output.durations[0].sum()) * codec.config.hop_length
