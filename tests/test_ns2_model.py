"""NS2Model: padding never leaks, save/load round trip, each loss trains what it should, overfitting."""

import json

import pytest
import torch
from transformers import AutoConfig, AutoModel

from ns2_hf.ns2 import NS2Config, NS2Model
from ns2_hf.ns2 import losses
from ns2_hf.schedulers import NS2Scheduler

NUM_QUANTIZERS, CODEBOOK_SIZE = 4, 64
NOISE_SCHEDULER = NS2Scheduler()  # the VP SDE training noises with


pytestmark = pytest.mark.usefixtures("one_thread")


def random_durations(num_phonemes, num_frames, generator):
    """`(num_phonemes,)` long, each ≥ 1, summing to `num_frames`."""
    extra = torch.randint(num_phonemes, (num_frames - num_phonemes,), generator=generator)
    return 1 + torch.bincount(extra, minlength=num_phonemes)


def make_batch(config, phonemes=(10, 7), frames=(40, 26), prompt_frames=(20, 13), seed=0):
    """A padded batch of random utterances whose latents are sums of true codebook vectors.

    Returns `(batch dict for NS2Model.forward without codebooks, codebooks (n_q, K, D))`.
    """
    generator = torch.Generator().manual_seed(seed)
    dim = config.latent_dim
    scales = 0.5 ** torch.arange(NUM_QUANTIZERS, dtype=torch.float32)
    codebooks = torch.randn(NUM_QUANTIZERS, CODEBOOK_SIZE, dim, generator=generator) * scales.view(-1, 1, 1)
    size, max_phonemes, max_frames, max_prompt = len(phonemes), max(phonemes), max(frames), max(prompt_frames)
    batch = {
        "phoneme_ids": torch.zeros(size, max_phonemes, dtype=torch.long),
        "phoneme_mask": torch.zeros(size, max_phonemes, dtype=torch.bool),
        "durations": torch.zeros(size, max_phonemes, dtype=torch.long),
        "log_f0": torch.zeros(size, max_frames),
        "latents": torch.zeros(size, dim, max_frames),
        "latent_mask": torch.zeros(size, max_frames, dtype=torch.bool),
        "prompt_latents": torch.zeros(size, dim, max_prompt),
        "prompt_mask": torch.zeros(size, max_prompt, dtype=torch.bool),
        "codes": torch.zeros(size, NUM_QUANTIZERS, max_frames, dtype=torch.long),
    }
    for index, (num_phonemes, num_frames, num_prompt) in enumerate(zip(phonemes, frames, prompt_frames)):
        codes = torch.randint(CODEBOOK_SIZE, (NUM_QUANTIZERS, num_frames), generator=generator)
        batch["phoneme_ids"][index, :num_phonemes] = torch.randint(
            1, config.vocab_size, (num_phonemes,), generator=generator
        )
        batch["phoneme_mask"][index, :num_phonemes] = True
        batch["durations"][index, :num_phonemes] = random_durations(num_phonemes, num_frames, generator)
        batch["log_f0"][index, :num_frames] = 4.5 + torch.rand(num_frames, generator=generator)
        batch["latents"][index, :, :num_frames] = codebooks[torch.arange(NUM_QUANTIZERS)[:, None], codes].sum(0).T
        batch["latent_mask"][index, :num_frames] = True
        batch["codes"][index, :, :num_frames] = codes
        batch["prompt_latents"][index, :, :num_prompt] = torch.randn(dim, num_prompt, generator=generator)
        batch["prompt_mask"][index, :num_prompt] = True
    return batch, codebooks


def fixed_diffusion_inputs(batch, seed=1):
    generator = torch.Generator().manual_seed(seed)
    size, dim, num_frames = batch["latents"].shape
    return {
        "timesteps": torch.linspace(0.3, 0.7, size),
        "noise": torch.randn(size, dim, num_frames, generator=generator),
    }


LOSS_TERMS = ("data_loss", "score_loss", "ce_rvq_loss", "duration_loss", "pitch_loss")


def test_save_load_round_trip_reproduces_denoise_and_losses(tmp_path):
    config = NS2Config.tiny(latent_scale=2.5)
    model = NS2Model(config).eval()
    batch, codebooks = make_batch(config)
    diffusion = fixed_diffusion_inputs(batch)
    with torch.no_grad():
        before = model(**batch, codebooks=codebooks, noise_scheduler=NOISE_SCHEDULER, **diffusion)
    model.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).latent_scale == 2.5
    loaded, info = AutoModel.from_pretrained(tmp_path, output_loading_info=True)
    assert isinstance(loaded, NS2Model)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    loaded.eval()
    with torch.no_grad():
        after = loaded(**batch, codebooks=codebooks, noise_scheduler=NOISE_SCHEDULER, **diffusion)
        prompt_hidden = loaded.encode_prompt(batch["prompt_latents"], batch["prompt_mask"])
        condition = torch.randn(2, config.hidden_size, batch["latents"].shape[-1])
        args = (diffusion["noise"], diffusion["timesteps"], condition, batch["latent_mask"], prompt_hidden)
        denoised_loaded = loaded.denoise(*args, batch["prompt_mask"])
        denoised_original = model.denoise(*args, batch["prompt_mask"])
    assert torch.equal(denoised_loaded, denoised_original)
    for name in ("loss",) + LOSS_TERMS + ("predicted_latents",):
        assert torch.equal(before[name], after[name]), name


def _item(tensor, index, length):
    """Item `index` of a padded `(batch, T, ...)` tensor, cut to its `length` valid positions."""
    return tensor[index : index + 1, :length]


def test_padded_batch_gives_each_item_what_it_gives_alone():
    config = NS2Config.tiny()
    model = NS2Model(config).eval()
    with torch.no_grad():  # as after training: no zero biases that would hide a leak
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    batch, _ = make_batch(config, phonemes=(10, 6), frames=(37, 20), prompt_frames=(12, 19))
    diffusion = fixed_diffusion_inputs(batch)

    def run(part):
        phoneme_hidden = model.encode_phonemes(part["phoneme_ids"], part["phoneme_mask"])
        prompt_hidden = model.encode_prompt(part["prompt_latents"], part["prompt_mask"])
        prompt = (prompt_hidden, part["prompt_mask"])
        log_durations = model.predict_durations(phoneme_hidden, part["phoneme_mask"], *prompt)
        frame_hidden, frame_mask = model.length_regulate(phoneme_hidden, part["durations"])
        log_f0 = model.predict_pitch(frame_hidden, frame_mask, *prompt)
        condition = model.build_condition(frame_hidden, part["log_f0"])
        denoised = model.denoise(part["noise"], part["timesteps"], condition, frame_mask, *prompt)
        return {
            "phoneme_hidden": phoneme_hidden,
            "prompt_hidden": prompt_hidden,
            "log_durations": log_durations,
            "frame_hidden": frame_hidden,
            "log_f0": log_f0,
            "denoised": denoised.transpose(1, 2),  # frames second, like the others
        }, frame_mask

    with torch.no_grad():
        batched, frame_mask = run({**batch, **diffusion})
        assert torch.equal(frame_mask, batch["latent_mask"])
        for index in range(2):
            lengths = {
                "phoneme": int(batch["phoneme_mask"][index].sum()),
                "frame": int(batch["latent_mask"][index].sum()),
                "prompt": int(batch["prompt_mask"][index].sum()),
            }
            alone_inputs = {
                "phoneme_ids": _item(batch["phoneme_ids"], index, lengths["phoneme"]),
                "phoneme_mask": _item(batch["phoneme_mask"], index, lengths["phoneme"]),
                "durations": _item(batch["durations"], index, lengths["phoneme"]),
                "prompt_latents": batch["prompt_latents"][index : index + 1, :, : lengths["prompt"]],
                "prompt_mask": _item(batch["prompt_mask"], index, lengths["prompt"]),
                "log_f0": _item(batch["log_f0"], index, lengths["frame"]),
                "noise": diffusion["noise"][index : index + 1, :, : lengths["frame"]],
                "timesteps": diffusion["timesteps"][index : index + 1],
            }
            alone, _ = run(alone_inputs)
            kinds = {
                "phoneme_hidden": "phoneme",
                "prompt_hidden": "prompt",
                "log_durations": "phoneme",
                "frame_hidden": "frame",
                "log_f0": "frame",
                "denoised": "frame",
            }
            for name, kind in kinds.items():
                length = lengths[kind]
                assert alone[name].shape[1] == length, name
                torch.testing.assert_close(_item(batched[name], index, length), alone[name], atol=1e-5, rtol=1e-5)
                assert not batched[name][index, length:].any(), f"{name} is not zero at padding"


def test_loss_is_the_weighted_sum_of_finite_terms():
    weights = dict(
        data_loss_weight=0.3, score_loss_weight=0.7, ce_rvq_loss_weight=0.05, duration_loss_weight=1.3,
        pitch_loss_weight=2.1,
    )
    config = NS2Config.tiny(**weights)
    model = NS2Model(config)
    batch, codebooks = make_batch(config)
    output = model(**batch, codebooks=codebooks, noise_scheduler=NOISE_SCHEDULER)
    expected = sum(weights[f"{name}_weight"] * output[name] for name in LOSS_TERMS)
    for name in LOSS_TERMS:
        assert torch.isfinite(output[name]) and output[name] > 0, name
    torch.testing.assert_close(output.loss, expected)
    assert NS2Config().ce_rvq_loss_weight == 0.1


# modules each loss must train (non-zero gradient) and must leave alone (no gradient)
DIFFUSION_MODULES = {"denoiser", "query_tokens", "pitch_embedding", "phoneme_encoder", "prompt_encoder"}
GRADIENT_EXPECTATIONS = {
    "data_loss": DIFFUSION_MODULES,
    "score_loss": DIFFUSION_MODULES,
    "ce_rvq_loss": DIFFUSION_MODULES,
    "duration_loss": {"duration_predictor", "phoneme_encoder", "prompt_encoder"},
    "pitch_loss": {"pitch_predictor", "phoneme_encoder", "prompt_encoder"},
}


def _gradient_norms(model):
    groups = {
        "phoneme_encoder": model.phoneme_encoder.parameters(),
        "prompt_encoder": model.prompt_encoder.parameters(),
        "duration_predictor": model.duration_predictor.parameters(),
        "pitch_predictor": model.pitch_predictor.parameters(),
        "pitch_embedding": model.pitch_embedding.parameters(),
        "denoiser": model.denoiser.parameters(),
        "query_tokens": [model.denoiser.prompt_query_tokens.query_tokens],
    }
    return {
        name: sum(float(p.grad.abs().sum()) for p in params if p.grad is not None) for name, params in groups.items()
    }


@pytest.mark.parametrize("term", LOSS_TERMS)
def test_each_loss_alone_trains_its_modules_and_only_them(term):
    config = NS2Config.tiny()
    model = NS2Model(config)
    batch, codebooks = make_batch(config)
    output = model(**batch, codebooks=codebooks, noise_scheduler=NOISE_SCHEDULER)
    output[term].backward()
    norms = _gradient_norms(model)
    for name, norm in norms.items():
        if name in GRADIENT_EXPECTATIONS[term]:
            assert norm > 0, f"{term} gives no gradient to {name}"
        else:
            assert norm == 0, f"{term} leaks gradient into {name}"
    if term in ("data_loss", "score_loss", "ce_rvq_loss"):
        # the prompt reaches the denoiser through FiLM
        for layer in model.denoiser.layers:
            if layer.film is not None:
                assert float(layer.film.scale_shift.weight.grad.abs().sum()) > 0


def test_padding_receives_no_loss_gradient():
    config = NS2Config.tiny()
    model = NS2Model(config)
    batch, codebooks = make_batch(config)
    batch["latents"].requires_grad_(True)
    batch["prompt_latents"].requires_grad_(True)
    model(**batch, codebooks=codebooks, noise_scheduler=NOISE_SCHEDULER).loss.backward()
    padded_frames = ~batch["latent_mask"]
    assert batch["latents"].grad.transpose(1, 2)[~padded_frames].abs().sum() > 0
    assert not batch["latents"].grad.transpose(1, 2)[padded_frames].any()
    assert not batch["prompt_latents"].grad.transpose(1, 2)[~batch["prompt_mask"]].any()


def test_ce_rvq_is_minimal_at_the_true_quantized_latent():
    generator = torch.Generator().manual_seed(0)
    num_quantizers, codebook_size, dim, num_frames = 4, 32, 16, 12
    # far-apart codebooks, coarse to fine, like a trained residual VQ
    scales = 10.0 ** (3 - torch.arange(num_quantizers, dtype=torch.float32))
    codebooks = torch.randn(num_quantizers, codebook_size, dim, generator=generator) * scales.view(-1, 1, 1)
    codes = torch.randint(codebook_size, (2, num_quantizers, num_frames), generator=generator)
    quantized = codebooks[torch.arange(num_quantizers)[:, None], codes].sum(1).transpose(1, 2)
    mask = torch.ones(2, num_frames, dtype=torch.bool)
    mask[1, 8:] = False
    at_truth = losses.ce_rvq_loss(quantized, codes, codebooks, mask)
    assert at_truth < 1e-4
    wrong_codes = (codes + 1) % codebook_size
    assert losses.ce_rvq_loss(quantized, wrong_codes, codebooks, mask) > 100
    # padded frames do not count
    garbage = quantized.clone()
    garbage[1, :, 8:] = 1e4
    assert losses.ce_rvq_loss(garbage, codes, codebooks, mask) < 1e-4


def test_ce_rvq_matches_a_per_quantizer_loop():
    generator = torch.Generator().manual_seed(1)
    codebooks = torch.randn(3, 8, 5, generator=generator)
    codes = torch.randint(8, (2, 3, 6), generator=generator)
    predicted = torch.randn(2, 5, 6, generator=generator)
    mask = torch.ones(2, 6, dtype=torch.bool)
    expected = []
    for j in range(3):
        earlier = sum((codebooks[i][codes[:, i]] for i in range(j)), torch.zeros(2, 6, 5))
        residual = predicted.transpose(1, 2) - earlier
        logits = -((residual.unsqueeze(-2) - codebooks[j]) ** 2).sum(-1)
        expected.append(torch.nn.functional.cross_entropy(logits.reshape(-1, 8), codes[:, j].reshape(-1)))
    torch.testing.assert_close(losses.ce_rvq_loss(predicted, codes, codebooks, mask), torch.stack(expected).mean())


def test_score_loss_is_the_min_snr_weighted_data_error():
    generator = torch.Generator().manual_seed(2)
    clean = torch.randn(3, 4, 10, generator=generator)
    predicted = clean + 0.1 * torch.randn(3, 4, 10, generator=generator)
    noise = torch.randn(3, 4, 10, generator=generator)
    timesteps = torch.tensor([1e-5, 0.1, 0.9])
    noisy = NOISE_SCHEDULER.add_noise(clean, noise, timesteps)
    predicted_noise = NOISE_SCHEDULER.noise_from_data_prediction(predicted, noisy, timesteps)
    mask = torch.ones(3, 10, dtype=torch.bool)
    snr = NOISE_SCHEDULER.snr(timesteps)
    value = losses.score_loss(predicted_noise, noise, snr, mask, snr_clamp=5.0)
    expected = (snr.clamp(max=5.0).view(-1, 1, 1) * (predicted - clean) ** 2).mean()
    assert torch.isfinite(value)
    torch.testing.assert_close(value, expected, rtol=1e-3, atol=1e-5)


def test_the_scheduler_given_to_forward_sets_the_noise():
    """The loss follows the SDE of the scheduler it is given (β and t_eps live only there)."""
    config = NS2Config.tiny()
    model = NS2Model(config).eval()
    batch, codebooks = make_batch(config)
    diffusion = fixed_diffusion_inputs(batch)
    with torch.no_grad():
        default = model(**batch, codebooks=codebooks, noise_scheduler=NOISE_SCHEDULER, **diffusion)
        other = model(**batch, codebooks=codebooks, noise_scheduler=NS2Scheduler(beta_max=5.0), **diffusion)
    assert not torch.allclose(default.data_loss, other.data_loss)
    assert not hasattr(config, "beta_min") and not hasattr(config, "t_eps")


def test_a_config_saved_with_the_old_sde_keys_still_loads(tmp_path):
    config = NS2Config.tiny()
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    saved.update(beta_min=0.05, beta_max=20.0, t_eps=1e-5)  # what folders saved before issue 17 hold
    (tmp_path / "config.json").write_text(json.dumps(saved))
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, NS2Config) and loaded.hidden_size == config.hidden_size
    assert "beta_min" not in loaded.to_dict() and "t_eps" not in loaded.to_dict()


def test_mismatched_duration_sums_raise():
    config = NS2Config.tiny()
    model = NS2Model(config)
    batch, codebooks = make_batch(config)
    batch["durations"][1, 0] += 1
    with pytest.raises(ValueError, match="sum to the number of valid latent frames"):
        model(**batch, codebooks=codebooks, noise_scheduler=NOISE_SCHEDULER)
    batch, codebooks = make_batch(config)
    batch["latent_mask"][0, 0] = False
    batch["durations"][0, 0] -= 1
    with pytest.raises(ValueError, match="valid frames first"):
        model(**batch, codebooks=codebooks, noise_scheduler=NOISE_SCHEDULER)
    batch, codebooks = make_batch(config)
    with pytest.raises(ValueError, match="codes"):
        model(**batch, codebooks=codebooks[:2], noise_scheduler=NOISE_SCHEDULER)


def test_durations_from_log_rounds_scales_and_keeps_a_frame():
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    log_durations = torch.log1p(torch.tensor([[2.0, 3.4, 0.2, 5.0], [0.3, 0.1, 9.0, 9.0]]))
    assert NS2Model.durations_from_log(log_durations, mask).tolist() == [[2, 3, 0, 0], [1, 0, 0, 0]]
    assert NS2Model.durations_from_log(log_durations, mask, speed=2.0).tolist() == [[1, 2, 0, 0], [1, 0, 0, 0]]
    slower = NS2Model.durations_from_log(log_durations, mask, speed=0.5)
    assert slower.tolist() == [[4, 7, 0, 0], [1, 0, 0, 0]]
    assert NS2Model.durations_from_log(torch.full((1, 3), -3.0), torch.ones(1, 3, dtype=torch.bool)).sum() == 1
    with pytest.raises(ValueError, match="speed"):
        NS2Model.durations_from_log(log_durations, mask, speed=0.0)


def test_length_regulate_repeats_each_phoneme_for_its_duration():
    model = NS2Model(NS2Config.tiny())
    hidden = torch.arange(1.0, 7.0).view(2, 3, 1).expand(-1, -1, 4)
    durations = torch.tensor([[2, 0, 3], [1, 1, 0]])
    frame_hidden, frame_mask = model.length_regulate(hidden, durations)
    assert frame_hidden[..., 0].tolist() == [[1, 1, 3, 3, 3], [4, 5, 0, 0, 0]]
    assert frame_mask.tolist() == [[True] * 5, [True, True, False, False, False]]
    with pytest.raises(ValueError, match="non-negative"):
        model.length_regulate(hidden, torch.tensor([[2, -1, 3], [1, 1, 0]]))


def _train(model, batch, codebooks, steps, learning_rate, diffusion=None):
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    model.train()
    for _ in range(steps):
        loss = model(**batch, codebooks=codebooks, noise_scheduler=NOISE_SCHEDULER, **(diffusion or {})).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def _overfit(model, batch, codebooks):
    """The model's outputs on `batch` (fixed diffusion times and noise) before and after 150 steps on it alone."""
    diffusion = fixed_diffusion_inputs(batch)
    with torch.no_grad():
        before = model(**batch, codebooks=codebooks, noise_scheduler=NOISE_SCHEDULER, **diffusion)
    _train(model, batch, codebooks, steps=150, learning_rate=3e-3, diffusion=diffusion)
    with torch.no_grad():
        after = model(**batch, codebooks=codebooks, noise_scheduler=NOISE_SCHEDULER, **diffusion)
    return before, after


def test_overfits_a_tiny_batch_with_fixed_diffusion_time_and_noise():
    config = NS2Config.tiny()
    model = NS2Model(config).eval()
    batch, codebooks = make_batch(config)
    before, after = _overfit(model, batch, codebooks)
    assert after.loss < before.loss / 5
    assert after.data_loss < before.data_loss / 5
    for name in LOSS_TERMS:
        assert after[name] < before[name], name


def test_data_loss_falls_when_training_with_random_diffusion_times():
    config = NS2Config.tiny()
    model = NS2Model(config).eval()
    batch, codebooks = make_batch(config)
    generator = torch.Generator().manual_seed(5)
    # probe at fixed times spread over (0, 1), noise fixed
    probes = [
        {"timesteps": torch.full((2,), t), "noise": torch.randn(batch["latents"].shape, generator=generator)}
        for t in (0.1, 0.3, 0.5, 0.7, 0.9)
    ]

    def probe_data_loss():
        with torch.no_grad():
            return sum(float(model(**batch, codebooks=codebooks, noise_scheduler=NOISE_SCHEDULER, **p).data_loss) for p in probes) / len(probes)

    before = probe_data_loss()
    _train(model, batch, codebooks, steps=150, learning_rate=1e-2)
    assert probe_data_loss() < before / 3


def test_base_config_has_the_paper_sizes():
    config = NS2Config()
    assert (config.hidden_size, config.phoneme_encoder_layers, config.predictor_layers) == (512, 6, 30)
    assert (config.wavenet_layers, config.num_query_tokens, config.latent_dim) == (40, 32, 256)
    with torch.device("meta"):
        model = NS2Model(config)
    num_parameters = sum(p.numel() for p in model.parameters())
    # the paper reports ~435M including a ~27M codec
    assert 380e6 < num_parameters < 480e6, num_parameters


# --- prompt-anchored pitch (pitch_normalization="prompt", ours) ------------------------------------------------
def with_voicing(batch, seed=2):
    """Adds `voiced (B, F)` (every third valid frame unvoiced) and the prompt's `prompt_log_f0`, `prompt_voiced`."""
    generator = torch.Generator().manual_seed(seed)
    frames = torch.arange(batch["log_f0"].shape[1])
    batch = dict(batch, voiced=batch["latent_mask"] & (frames % 3 != 0))
    prompt_mask = batch["prompt_mask"]
    batch["prompt_log_f0"] = (5.0 + 0.2 * torch.randn(prompt_mask.shape, generator=generator)) * prompt_mask
    batch["prompt_voiced"] = prompt_mask & (torch.arange(prompt_mask.shape[1]) % 4 != 0)
    return batch


def test_prompt_pitch_model_overfits_a_tiny_batch():
    config = NS2Config.tiny(pitch_normalization="prompt")
    model = NS2Model(config).eval()
    batch, codebooks = make_batch(config)
    batch = with_voicing(batch)
    before, after = _overfit(model, batch, codebooks)
    assert after.loss < before.loss / 5
    assert after.pitch_loss < before.pitch_loss / 5
    # the de-normalised prediction is the true log-f0 on voiced frames (in Hz: within a few per cent)
    voiced = batch["voiced"]
    assert (after.predicted_log_f0[voiced] - batch["log_f0"][voiced]).abs().mean() < 0.05


def test_prompt_pitch_loss_ignores_unvoiced_frames():
    config = NS2Config.tiny(pitch_normalization="prompt")
    model = NS2Model(config).eval()
    batch, codebooks = make_batch(config)
    batch = with_voicing(batch)
    diffusion = fixed_diffusion_inputs(batch)
    log_f0 = batch["log_f0"].clone().requires_grad_(True)
    output = model(**dict(batch, log_f0=log_f0), codebooks=codebooks, noise_scheduler=NOISE_SCHEDULER, **diffusion)
    output.pitch_loss.backward()
    voiced, unvoiced = batch["voiced"], batch["latent_mask"] & ~batch["voiced"]
    assert unvoiced.any() and (log_f0.grad[unvoiced] == 0).all()
    assert (log_f0.grad[voiced] != 0).all()
    # moving the (interpolated) target on unvoiced frames leaves the pitch loss as it was
    moved = batch["log_f0"] + 3.0 * unvoiced
    with torch.no_grad():
        again = model(**dict(batch, log_f0=moved), codebooks=codebooks, noise_scheduler=NOISE_SCHEDULER, **diffusion)
    assert torch.allclose(again.pitch_loss, output.pitch_loss)
    # the paper's setting counts them
    plain = NS2Model(NS2Config.tiny()).eval()
    with torch.no_grad():
        first, second = (plain(**dict(batch, log_f0=f0), codebooks=codebooks, noise_scheduler=NOISE_SCHEDULER,
                               **diffusion).pitch_loss for f0 in (batch["log_f0"], moved))
    assert second > first + 0.5


def test_prompt_pitch_prediction_moves_with_the_prompts_pitch_and_needs_it():
    config = NS2Config.tiny(pitch_normalization="prompt")
    model = NS2Model(config).eval()
    frame_hidden, frame_mask = torch.randn(2, 9, config.hidden_size), torch.arange(9)[None] < torch.tensor([[9], [6]])
    prompt_hidden, prompt_mask = torch.randn(2, 5, config.hidden_size), torch.ones(2, 5, dtype=torch.bool)
    std = torch.tensor([0.1, 0.2])
    with torch.no_grad():
        low = model.predict_pitch(frame_hidden, frame_mask, prompt_hidden, prompt_mask, (torch.tensor([4.5, 5.0]), std))
        high = model.predict_pitch(frame_hidden, frame_mask, prompt_hidden, prompt_mask, (torch.tensor([4.8, 5.3]), std))
    assert torch.allclose((high - low)[frame_mask], torch.tensor(0.3))
    assert (high[~frame_mask] == 0).all()
    with pytest.raises(ValueError, match="prompt_pitch"):
        model.predict_pitch(frame_hidden, frame_mask, prompt_hidden, prompt_mask)
    batch, codebooks = make_batch(config)
    with pytest.raises(ValueError, match="voiced"):
        model(**batch, codebooks=codebooks, noise_scheduler=NOISE_SCHEDULER)
    with pytest.raises(ValueError, match="pitch_normalization"):
        NS2Config.tiny(pitch_normalization="speaker")


# --- prompt dropout (the null prompt of prompt guidance, ours) ------------------------------------------------
def _eval_outputs(model, data, codebooks, diffusion, **drops):
    """`model`'s outputs on `data` without gradient, with the given `drop_prompt` / `drop_condition`."""
    with torch.no_grad():
        return model(**data, codebooks=codebooks, noise_scheduler=NOISE_SCHEDULER, **drops, **diffusion)


def test_a_dropped_prompt_does_not_reach_the_denoiser_but_still_reaches_the_predictors():
    config = NS2Config.tiny(prompt_dropout=0.2)
    model = NS2Model(config).eval()
    batch, codebooks = make_batch(config)
    diffusion = fixed_diffusion_inputs(batch)
    other_prompt = dict(batch, prompt_latents=batch["prompt_latents"] + torch.randn_like(batch["prompt_latents"]))

    dropped = torch.tensor([True, False])
    first, second = (_eval_outputs(model, data, codebooks, diffusion, drop_prompt=dropped) for data in (batch, other_prompt))
    # item 0 (dropped): the denoiser's output ignores the prompt; item 1 (kept) follows it
    assert torch.equal(first.predicted_latents[0], second.predicted_latents[0])
    assert not torch.allclose(first.predicted_latents[1], second.predicted_latents[1])
    # the duration and pitch predictors see the prompt either way
    assert not torch.allclose(first.predicted_log_durations[0], second.predicted_log_durations[0])
    # and the data loss sends no gradient into the prompt encoder through a dropped item
    model.train()
    model.config.prompt_dropout = 0.0  # no random drops beyond the given ones
    model.zero_grad()
    all_dropped = torch.tensor([True, True])
    model(**batch, codebooks=codebooks, noise_scheduler=NOISE_SCHEDULER, drop_prompt=all_dropped, **diffusion).data_loss.backward()
    assert _gradient_norms(model)["prompt_encoder"] == 0
    assert _gradient_norms(model)["query_tokens"] > 0  # the null prompt is the learned queries


@pytest.mark.parametrize("dropout, position", [("prompt_dropout", -2), ("condition_dropout", -1)])
def test_dropout_drops_that_share_of_items_in_training_only(monkeypatch, dropout, position):
    """`prompt_dropout` / `condition_dropout`: the denoiser's `drop_prompt` / `drop_condition` (its last two arguments)."""
    config = NS2Config.tiny(**{dropout: 0.3})
    model = NS2Model(config)
    batch, codebooks = make_batch(config)
    seen = []
    original = model.denoiser.forward

    def recording_forward(*args):
        seen.append(args[position])
        return original(*args)

    monkeypatch.setattr(model.denoiser, "forward", recording_forward)
    torch.manual_seed(0)
    with torch.no_grad():
        for _ in range(150):
            model(**batch, codebooks=codebooks, noise_scheduler=NOISE_SCHEDULER)
        model.eval()
        model(**batch, codebooks=codebooks, noise_scheduler=NOISE_SCHEDULER)
    share = torch.cat(seen[:-1]).float().mean()
    assert 0.22 < share < 0.38, share
    assert seen[-1] is None  # eval mode: every item sees its prompt and condition
    with pytest.raises(ValueError, match=dropout):
        NS2Config.tiny(**{dropout: 1.0})


# --- condition dropout (the null content of content guidance, ours) -------------------------------------------
def test_a_dropped_condition_does_not_reach_the_denoiser_but_the_predictors_still_train():
    config = NS2Config.tiny(condition_dropout=0.2)
    model = NS2Model(config).eval()
    batch, codebooks = make_batch(config)
    diffusion = fixed_diffusion_inputs(batch)
    other_content = dict(batch, phoneme_ids=batch["phoneme_ids"].flip(1) * batch["phoneme_mask"], log_f0=batch["log_f0"] + 0.5)

    dropped = torch.tensor([True, False])
    first, second = (_eval_outputs(model, data, codebooks, diffusion, drop_condition=dropped) for data in (batch, other_content))
    # item 0 (dropped): the denoiser's output ignores phonemes and pitch; item 1 (kept) follows them
    assert torch.equal(first.predicted_latents[0], second.predicted_latents[0])
    assert not torch.allclose(first.predicted_latents[1], second.predicted_latents[1])
    # the data loss of dropped items sends no gradient to the phoneme encoder or the pitch embedding,
    # the duration and pitch losses still train the encoder
    model.train()
    model.config.condition_dropout = 0.0  # no random drops beyond the given ones
    all_dropped = torch.tensor([True, True])
    model.zero_grad()
    model(**batch, codebooks=codebooks, noise_scheduler=NOISE_SCHEDULER, drop_condition=all_dropped, **diffusion).data_loss.backward()
    norms = _gradient_norms(model)
    assert norms["phoneme_encoder"] == 0 and norms["pitch_embedding"] == 0 and norms["denoiser"] > 0
    model.zero_grad()
    model(**batch, codebooks=codebooks, noise_scheduler=NOISE_SCHEDULER, drop_condition=all_dropped, **diffusion).duration_loss.backward()
    assert _gradient_norms(model)["phoneme_encoder"] > 0
