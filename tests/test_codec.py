"""Tests of the NaturalSpeech 2 codec: config, save/load, lengths and padding, RVQ behaviour, discriminators,
losses and the feature extractor. Tiny configs, CPU."""

import math

import numpy as np
import pytest
import torch
from transformers import AutoFeatureExtractor, AutoModel

from ns2_hf.audio import AudioInputError
from ns2_hf.codec import (
    NS2CodecConfig,
    NS2CodecDiscriminator,
    NS2CodecFeatureExtractor,
    NS2CodecModel,
    NS2ResidualVectorQuantizer,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    multi_resolution_mel_loss,
    phase_loss,
    si_snr,
)

SAMPLING_RATE = NS2CodecConfig().sampling_rate
HOP = NS2CodecConfig().hop_length


def _speechlike(n_samples: int, seed: int = 0) -> torch.Tensor:
    """A few harmonics with a slow envelope plus noise, `(n_samples,)`, peak about 0.3."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(n_samples) / SAMPLING_RATE
    f0 = 120 + 40 * torch.rand((), generator=generator)
    wave = sum(torch.sin(2 * math.pi * f0 * k * t) / k for k in range(1, 6))
    envelope = 0.5 + 0.5 * torch.sin(2 * math.pi * 3 * t)
    return 0.1 * wave * envelope + 0.01 * torch.randn(n_samples, generator=generator)


@pytest.fixture(params=["convolutional", "fourier"])
def model(request) -> NS2CodecModel:
    """The tiny codec with each kind of decoder: every test using it runs for both."""
    return NS2CodecModel(NS2CodecConfig.tiny(decoder_type=request.param)).eval()


def _train_one_step(model: NS2CodecModel, audio: torch.Tensor) -> None:
    """One forward in train mode: initialises the codebooks from data (dead-code restart) and moves the EMAs."""
    model.train()
    with torch.no_grad():
        model(audio)
    model.eval()


# ----------------------------------------------------------------------------------------------- config


def test_config_sizes_and_validation():
    base, tiny = NS2CodecConfig(), NS2CodecConfig.tiny()
    for config in (base, tiny):
        assert config.hop_length == 200 and config.frame_rate == 80.0 and config.sampling_rate == 16000
    assert (base.num_quantizers, base.codebook_size, base.latent_dim) == (16, 1024, 256)
    assert (tiny.num_quantizers, tiny.codebook_size, tiny.latent_dim) == (8, 256, 32)
    base_model = NS2CodecModel(base)
    n_parameters = sum(p.numel() for p in base_model.parameters()) + base_model.get_codebooks().numel()
    assert 24e6 < n_parameters < 30e6  # the paper's ~27M
    for bad in (
        dict(downsampling_ratios=[2, 1, 5]),
        dict(quantizer_dropout=1.5),
        dict(codebook_ema_decay=1.0),
        dict(dead_code_threshold=0.0),
        dict(decoder_hidden_size=100),
        dict(decoder_type="wavenet"),
        dict(decoder_type="fourier", fourier_n_fft=201),  # n_fft - hop must be even
    ):
        with pytest.raises(ValueError):
            NS2CodecConfig.tiny(**bad)


# ------------------------------------------------------------------------------------------ save / load


def test_save_and_load_reproduce_encode_and_decode(tmp_path, model):
    audio = torch.stack([_speechlike(4000, 0), _speechlike(4000, 1)])
    _train_one_step(model, audio)  # codebooks and EMA statistics now differ from their initial values
    model.save_pretrained(tmp_path)
    NS2CodecFeatureExtractor.from_codec_config(model.config).save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()

    import ns2_hf.codec  # noqa: F401  (registers the Auto classes)

    for loaded in (NS2CodecModel.from_pretrained(tmp_path), AutoModel.from_pretrained(tmp_path)):
        assert isinstance(loaded, NS2CodecModel)
        loaded.eval()
        for (name, tensor), (loaded_name, loaded_tensor) in zip(
            model.state_dict().items(), loaded.state_dict().items()
        ):
            assert name == loaded_name and torch.equal(tensor, loaded_tensor), name
        with torch.no_grad():
            expected, actual = model.encode(audio), loaded.encode(audio)
            assert torch.equal(expected.audio_codes, actual.audio_codes)
            assert torch.equal(expected.quantized_latents, actual.quantized_latents)
            assert torch.equal(
                model.decode(expected.quantized_latents).audio_values,
                loaded.decode(actual.quantized_latents).audio_values,
            )
    extractor = AutoFeatureExtractor.from_pretrained(tmp_path)
    assert isinstance(extractor, NS2CodecFeatureExtractor) and extractor.sampling_rate == SAMPLING_RATE


# ---------------------------------------------------------------------------------- lengths and padding


@pytest.mark.parametrize("n_samples", [1, HOP - 1, HOP, 16000 + 37])
def test_any_length_round_trips_with_ceil_frames(model, n_samples):
    audio = _speechlike(n_samples).unsqueeze(0)
    n_frames = math.ceil(n_samples / HOP)
    with torch.no_grad():
        encoded = model.encode(audio)
        assert encoded.latents.shape == (1, model.config.latent_dim, n_frames)
        assert encoded.quantized_latents.shape == (1, model.config.latent_dim, n_frames)
        assert encoded.audio_codes.shape == (1, model.config.num_quantizers, n_frames)
        assert encoded.audio_codes.dtype == torch.long and bool(encoded.latent_mask.all())
        decoded = model.decode(encoded.quantized_latents).audio_values
        assert decoded.shape == (1, n_frames * HOP)
        output = model(audio.unsqueeze(1))  # (batch, 1, samples) is accepted too
        assert output.audio_values.shape == (1, n_samples)
        assert torch.allclose(output.audio_values, decoded[:, :n_samples])
        assert torch.isfinite(output.audio_values).all() and output.audio_values.abs().max() <= 1


def test_padded_batch_item_equals_item_alone(model):
    long, short = _speechlike(16000 + 37, 0), _speechlike(3 * HOP + 17, 1)
    _train_one_step(model, torch.stack([long]))
    batch = NS2CodecFeatureExtractor()([long.numpy(), short.numpy()], sampling_rate=SAMPLING_RATE)
    assert batch["padding_mask"].dtype == torch.bool and batch["padding_mask"][1].sum() == short.numel()
    n_short_frames = math.ceil(short.numel() / HOP)
    with torch.no_grad():
        batched = model(batch["input_values"], padding_mask=batch["padding_mask"])
        alone = model(short.unsqueeze(0))
        long_alone = model(long.unsqueeze(0))
    assert batched.latent_mask[1].sum() == n_short_frames and bool(batched.latent_mask[0].all())
    assert torch.equal(batched.audio_codes[1, :, :n_short_frames], alone.audio_codes[0])
    assert torch.allclose(batched.latents[1, :, :n_short_frames], alone.latents[0], atol=1e-5)
    assert torch.allclose(batched.audio_values[1, : short.numel()], alone.audio_values[0], atol=1e-5)
    assert torch.all(batched.audio_values[1, short.numel():] == 0)
    assert torch.all(batched.quantized_latents[1, :, n_short_frames:] == 0)
    assert torch.allclose(batched.audio_values[0], long_alone.audio_values[0], atol=1e-5)
    with torch.no_grad():  # the decoder alone honours a latent mask the same way
        decoded = model.decode(batched.quantized_latents, latent_mask=batched.latent_mask).audio_values
    assert torch.allclose(decoded[1, : n_short_frames * HOP], model.decode(alone.quantized_latents).audio_values[0],
                          atol=1e-5)


# ------------------------------------------------------------------------------------------------- RVQ


def test_decoding_codes_equals_decoding_quantized_latents(model):
    audio = _speechlike(2400).unsqueeze(0)
    _train_one_step(model, audio)
    with torch.no_grad():
        encoded = model.encode(audio)
        assert torch.equal(model.codes_to_latents(encoded.audio_codes), encoded.quantized_latents)
        from_codes = model.decode(audio_codes=encoded.audio_codes).audio_values
        from_latents = model.decode(quantized_latents=encoded.quantized_latents).audio_values
    assert torch.equal(from_codes, from_latents)
    assert model.get_codebooks().shape == (8, 256, 32)
    # the quantized latent is literally the sum of one codebook vector per quantizer
    codebooks = model.get_codebooks()
    frame = 3
    manual = sum(codebooks[i, encoded.audio_codes[0, i, frame]] for i in range(8))
    assert torch.allclose(manual, encoded.quantized_latents[0, :, frame], atol=1e-6)


def test_resynthesize_decodes_the_quantized_or_the_continuous_latents(model):
    """`ns2_hf.codec.resynthesize`: the codec's forward by default; `quantized=False` decodes the encoder's own
    latents, which the RVQ only approximates."""
    from ns2_hf.codec import resynthesize

    audio = _speechlike(2400)
    _train_one_step(model, audio[None])
    with torch.no_grad():
        encoded = model.encode(audio[None])
        through_rvq = model.decode(encoded.quantized_latents).audio_values[0, :2400]
        continuous = model.decode(encoded.latents).audio_values[0, :2400]
    np.testing.assert_allclose(resynthesize(model, audio.numpy()), model(audio[None]).audio_values[0].detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(resynthesize(model, audio.numpy()), through_rvq.numpy(), atol=1e-5)
    np.testing.assert_allclose(resynthesize(model, audio.numpy(), quantized=False), continuous.numpy(), atol=1e-6)
    assert not torch.equal(encoded.latents, encoded.quantized_latents)


def test_n_quantizers_uses_the_first_k(model):
    # more frames (4 x 80) than codes (256), so the first codebook cannot simply hold every frame
    _train_one_step(model, torch.stack([_speechlike(16000, seed) for seed in range(4)]))
    audio = _speechlike(3000, 5).unsqueeze(0)  # unseen
    with torch.no_grad():
        full = model.encode(audio)
        for k in (1, 3, 8):
            partial = model.encode(audio, n_quantizers=k)
            assert partial.audio_codes.shape[1] == k
            assert torch.equal(partial.audio_codes, full.audio_codes[:, :k])
            assert torch.equal(partial.quantized_latents, model.codes_to_latents(partial.audio_codes))
        errors = [
            (model.encode(audio, n_quantizers=k).quantized_latents - full.latents).pow(2).mean() for k in (1, 4, 8)
        ]
    assert errors[0] > errors[1] > errors[2]  # each residual stage refines the latent
    for bad in (0, 9):
        with pytest.raises(ValueError, match="n_quantizers"):
            model.encode(audio, n_quantizers=bad)


def test_gradients_reach_the_encoder_through_the_quantizer(model):
    model.train()
    audio = _speechlike(2000).unsqueeze(0)
    output = model(audio)
    reconstruction = (output.audio_values - audio).abs().mean()  # no commitment term: only straight-through
    reconstruction.backward()
    first_conv = model.encoder.conv_in.parametrizations.weight.original1
    assert first_conv.grad is not None and first_conv.grad.abs().sum() > 0 and torch.isfinite(first_conv.grad).all()
    model.zero_grad()
    model(audio).commitment_loss.backward()
    assert first_conv.grad.abs().sum() > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.decoder.parameters())


def test_quantizer_dropout_varies_active_quantizers_in_training():
    latents = torch.randn(2, 32, 10)
    quantizer = NS2ResidualVectorQuantizer(NS2CodecConfig.tiny(quantizer_dropout=1.0)).train()
    counts = {quantizer(latents).audio_codes.shape[1] for _ in range(30)}
    assert len(counts) > 2 and counts <= set(range(1, 9))
    assert quantizer(latents, n_quantizers=5).audio_codes.shape[1] == 5  # an explicit k overrides dropout
    quantizer.eval()
    assert {quantizer(latents).audio_codes.shape[1] for _ in range(5)} == {8}
    no_dropout = NS2ResidualVectorQuantizer(NS2CodecConfig.tiny(quantizer_dropout=0.0)).train()
    assert {no_dropout(latents).audio_codes.shape[1] for _ in range(5)} == {8}


def test_dead_code_restart_revives_unused_codes():
    config = NS2CodecConfig.tiny(quantizer_dropout=0.0)
    quantizer = NS2ResidualVectorQuantizer(config)
    latents = torch.randn(2, 32, 40)
    with torch.no_grad():
        quantizer.embeddings.normal_()
        quantizer.embeddings[:, :10] += 1000.0  # codes 0..9 of every quantizer are far from any frame ...
        quantizer.cluster_size.fill_(10.0)
        quantizer.cluster_size[:, :10] = 0.0  # ... and unused: dead
        quantizer.embedding_sum.copy_(quantizer.embeddings * 10.0)
        alive_before = quantizer.embeddings[0, 10:].clone()
        quantizer.eval()
        assert quantizer(latents).audio_codes[:, 0].min() >= 10
        quantizer.train()
        quantizer(latents)
        quantizer.eval()
        revived = quantizer.embeddings[0, :10]
        frames = latents.transpose(1, 2).reshape(-1, 32)
        assert torch.cdist(revived, frames).min(dim=1).values.max() < 5.0  # moved onto the data
        assert (quantizer(latents).audio_codes[:, 0] < 10).any()  # and now chosen
        # live codes were only moved by their EMA step, not restarted
        assert (quantizer.embeddings[0, 10:] - alive_before).norm(dim=1).max() < 1.0


def test_padded_frames_do_not_touch_codebooks_or_losses():
    config = NS2CodecConfig.tiny(quantizer_dropout=0.0)
    valid = torch.randn(1, 32, 12)
    padded = torch.cat([valid, torch.full((1, 32, 5), 1e4)], dim=2)
    mask = torch.arange(17).unsqueeze(0) < 12
    results = []
    for latents, latent_mask in ((valid, None), (padded, mask)):
        torch.manual_seed(1)
        quantizer = NS2ResidualVectorQuantizer(config).train()
        output = quantizer(latents, mask=latent_mask)
        results.append((output, {k: v.clone() for k, v in quantizer.state_dict().items()}))
    (plain, plain_state), (masked, masked_state) = results
    for name in plain_state:
        assert torch.equal(plain_state[name], masked_state[name]), name
    assert torch.equal(plain.commitment_loss, masked.commitment_loss)
    assert torch.equal(plain.audio_codes, masked.audio_codes[:, :, :12])
    assert torch.all(masked.quantized_latents[:, :, 12:] == 0)


def test_bad_model_inputs_raise(model):
    with pytest.raises(ValueError, match="mono"):
        model.encode(torch.zeros(1, 2, 400))
    with pytest.raises(ValueError, match="empty"):
        model.encode(torch.zeros(1, 0))
    with pytest.raises(ValueError, match="float"):
        model.encode(torch.zeros(1, 400, dtype=torch.long))
    with pytest.raises(ValueError, match="padding_mask"):
        model.encode(torch.zeros(2, 400), padding_mask=torch.ones(2, 300, dtype=torch.bool))
    with pytest.raises(ValueError, match="exactly one"):
        model.decode()
    with pytest.raises(ValueError, match=r"\[0, 256\)"):
        model.decode(audio_codes=torch.full((1, 2, 3), 256))
    with pytest.raises(ValueError, match="quantizer rows"):
        model.decode(audio_codes=torch.zeros(1, 9, 3, dtype=torch.long))


# ---------------------------------------------------------------------------------------- harmonic phase


def _fourier_codec() -> NS2CodecModel:
    return NS2CodecModel(NS2CodecConfig.tiny(decoder_type="fourier")).eval()


@pytest.mark.parametrize("f0_hz", [95.0, 150.0, 230.0])
def test_harmonic_phase_puts_the_output_at_the_given_pitch(f0_hz):
    """Even an untrained decoder's output — broadband magnitudes, random phases — takes the pitch of the f0 it is
    given once the voiced frames take the harmonic excitation's phase: Praat finds it within 3 %, also at 95 Hz,
    just above the 80 Hz frame rate where the decoder's own phases print the frame grid."""
    from ns2_hf.audio.pitch import extract_pitch

    torch.manual_seed(0)
    codec = _fourier_codec()
    latents = torch.randn(1, codec.config.latent_dim, 160)
    with torch.no_grad():
        audio = codec.decode(latents, f0=torch.full((1, 160), f0_hz)).audio_values[0].numpy()
    log_f0, voiced = extract_pitch(audio, SAMPLING_RATE, HOP)
    assert voiced.mean() > 0.9
    assert np.median(np.exp(log_f0[voiced])) == pytest.approx(f0_hz, rel=0.03)


def test_harmonic_phase_touches_voiced_frames_below_its_cutoff_only():
    """Unvoiced frames keep the decoder's phases: all-unvoiced decodes exactly as without f0. The excitation
    holds the harmonics of f0 below `harmonic_phase_max_hz` and nothing above."""
    torch.manual_seed(0)
    codec = _fourier_codec()
    latents = torch.randn(1, codec.config.latent_dim, 50)
    with torch.no_grad():
        plain = codec.decode(latents).audio_values
        unvoiced = codec.decode(latents, f0=torch.full((1, 50), 120.0), voiced=torch.zeros(1, 50, dtype=torch.bool))
        voiced = codec.decode(latents, f0=torch.full((1, 50), 120.0))
    assert torch.equal(plain, unvoiced.audio_values) and not torch.allclose(plain, voiced.audio_values)
    excitation = codec.decoder.harmonic_excitation(torch.full((1, 50), 120.0))[0]
    spectrum = np.abs(np.fft.rfft(excitation.numpy()))
    frequencies = np.fft.rfftfreq(excitation.numel(), 1 / SAMPLING_RATE)
    cutoff = codec.config.harmonic_phase_max_hz
    harmonics = spectrum[np.isclose(frequencies % 120.0, 0) & (frequencies > 0) & (frequencies < cutoff)]
    assert harmonics.min() > 0.3 * spectrum.max() and spectrum[frequencies > cutoff + 120].max() < 1e-3 * spectrum.max()


def test_harmonic_excitation_follows_no_pitch_below_the_trackers_floor():
    """An f0 below 50 Hz (an untrained pitch predictor's; the pitch tracker never gives one) is excited as 50 Hz,
    so the number of harmonics stays bounded (0.01 Hz once asked for 150,000 and took minutes); above it the
    contour is followed as given."""
    from ns2_hf.codec.modeling_codec import HARMONIC_EXCITATION_MIN_HZ

    decoder = _fourier_codec().decoder
    floor = decoder.harmonic_excitation(torch.full((1, 20), HARMONIC_EXCITATION_MIN_HZ))
    for low in (5.0, 0.01):
        assert torch.equal(decoder.harmonic_excitation(torch.full((1, 20), low)), floor)
    contour = torch.linspace(30.0, 90.0, 20)[None]
    assert torch.equal(decoder.harmonic_excitation(contour),
                       decoder.harmonic_excitation(contour.clamp(min=HARMONIC_EXCITATION_MIN_HZ)))
    assert not torch.equal(decoder.harmonic_excitation(torch.full((1, 20), 60.0)), floor)


def test_pitch_postfilter_deepens_the_valleys_between_harmonics_and_keeps_the_band_energy():
    """Flat magnitudes through the postfilter: the bins between the harmonics of f0 lose against the harmonic
    bins (more the stronger it is), each voiced frame keeps its energy below the cut-off, and the bins above it
    and the unvoiced frames keep their magnitudes."""
    torch.manual_seed(0)
    f0_hz, frames = 125.0, 40
    f0, voiced = torch.full((1, frames), f0_hz), torch.arange(frames)[None] < 30
    flat = torch.polar(torch.ones(1, 401, frames), torch.rand(1, 401, frames) * 6.28)
    bin_hz = torch.arange(401) * SAMPLING_RATE / 800
    below = bin_hz < 2000.0
    harmonic, between = torch.isclose(bin_hz % f0_hz, torch.tensor(0.0)) & below, torch.isclose(bin_hz % f0_hz, torch.tensor(60.0)) & below
    ratios = []
    for strength in (0.0, 0.5, 1.0):
        decoder = NS2CodecModel(NS2CodecConfig.tiny(decoder_type="fourier", pitch_postfilter=strength)).decoder
        magnitude = decoder.with_harmonic_phase(flat, f0, voiced).abs()[0]
        ratios.append(float(magnitude[harmonic, 5:25].mean() / magnitude[between, 5:25].mean()))
        assert torch.allclose(magnitude[below, :30].square().sum(0), torch.full((30,), float(below.sum())), rtol=1e-4)
        assert torch.allclose(magnitude[~below], flat.abs()[0][~below]) and torch.allclose(magnitude[:, 30:], flat.abs()[0, :, 30:])
    assert ratios[0] == pytest.approx(1.0) and 2.0 < ratios[1] < ratios[2]


def test_forward_with_f0_decodes_with_the_harmonic_phase():
    """`forward(f0=, voiced=)` (what `train_codec.py` uses with `harmonic_phase: true`) is encode + `decode(f0=,
    voiced=)`; without f0 it is the plain decoder."""
    torch.manual_seed(0)
    codec = _fourier_codec()
    audio = torch.randn(1, 4000) * 0.1
    f0, voiced = torch.full((1, 20), 140.0), torch.arange(20)[None] % 3 > 0
    with torch.no_grad():
        latents = codec.encode(audio).quantized_latents
        harmonic = codec(audio, f0=f0, voiced=voiced).audio_values
        plain = codec(audio).audio_values
    assert torch.equal(harmonic, codec.decode(latents, f0=f0, voiced=voiced).audio_values[:, :4000])
    assert torch.equal(plain, codec.decode(latents).audio_values[:, :4000]) and not torch.allclose(harmonic, plain)


def test_pitch_postfilter_must_not_be_negative():
    with pytest.raises(ValueError, match="pitch_postfilter"):
        NS2CodecConfig.tiny(decoder_type="fourier", pitch_postfilter=-0.5)


def test_harmonic_phase_rejects_bad_contours(model):
    latents = torch.randn(1, model.config.latent_dim, 10)
    if model.config.decoder_type == "convolutional":
        with pytest.raises(ValueError, match="Fourier decoder"):
            model.decode(latents, f0=torch.full((1, 10), 100.0))
        return
    with pytest.raises(ValueError, match=r"\(batch, frames\)"):
        model.decode(latents, f0=torch.full((1, 9), 100.0))
    for bad in (0.0, float("nan")):
        with pytest.raises(ValueError, match="finite and positive"):
            model.decode(latents, f0=torch.full((1, 10), bad))


# ---------------------------------------------------------------------------- discriminators and losses


def test_discriminators_return_one_output_per_sub_discriminator():
    config = NS2CodecConfig.tiny()
    discriminator = NS2CodecDiscriminator(config)
    logits, feature_maps = discriminator(torch.stack([_speechlike(4001, 0), _speechlike(4001, 1)]))
    n_sub = len(config.discriminator_periods) + len(config.discriminator_stft_n_ffts)
    assert len(logits) == len(feature_maps) == n_sub
    period_logits, _ = discriminator.multi_period(torch.zeros(2, 4001))
    assert [x.shape[-1] for x in period_logits] == config.discriminator_periods
    for sub_logits, maps in zip(logits, feature_maps):
        assert sub_logits.shape[0] == 2 and len(maps) >= 2 and torch.equal(maps[-1], sub_logits)


def test_adversarial_losses_send_gradient_to_the_right_side():
    config = NS2CodecConfig.tiny()
    discriminator = NS2CodecDiscriminator(config)
    generator_gain = torch.nn.Parameter(torch.tensor(0.5))  # stands in for the codec
    real = _speechlike(4000).unsqueeze(0)
    fake = generator_gain * real + 0.05 * torch.randn_like(real)

    real_logits, _ = discriminator(real)
    fake_logits, _ = discriminator(fake.detach())
    discriminator_loss(real_logits, fake_logits).backward()
    assert generator_gain.grad is None
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in discriminator.parameters())

    discriminator.zero_grad()
    real_logits, real_maps = discriminator(real)
    fake_logits, fake_maps = discriminator(fake)
    (generator_adversarial_loss(fake_logits) + feature_matching_loss(real_maps, fake_maps)).backward()
    assert generator_gain.grad is not None and generator_gain.grad.abs() > 0


def test_hinge_losses_known_values():
    ones = [torch.ones(2, 3)]
    assert discriminator_loss([2 * t for t in ones], [-2 * t for t in ones]) == 0  # confident and right
    assert discriminator_loss([-t for t in ones], ones) == 4  # relu(1 + 1) + relu(1 + 1)
    assert generator_adversarial_loss([2 * t for t in ones]) == 0
    assert generator_adversarial_loss([-t for t in ones]) == 2
    maps = [[torch.ones(2, 3), torch.zeros(4)]]
    assert feature_matching_loss(maps, maps) == 0
    assert feature_matching_loss(maps, [[torch.zeros(2, 3), torch.zeros(4)]]) == 0.5


def test_mel_loss_and_si_snr():
    target = torch.stack([_speechlike(8000, 0), _speechlike(8000, 1)])
    assert multi_resolution_mel_loss(target, target, SAMPLING_RATE) == 0
    noisy = target + 0.05 * torch.randn_like(target)
    noisier = target + 0.2 * torch.randn_like(target)
    assert 0 < multi_resolution_mel_loss(noisy, target, SAMPLING_RATE) < multi_resolution_mel_loss(
        noisier, target, SAMPLING_RATE
    )
    assert torch.all(si_snr(3 * target, target) > 60)  # scale-invariant
    noise = torch.randn_like(target)
    noise = noise - noise.mean(-1, keepdim=True)
    noise = noise / noise.norm(dim=-1, keepdim=True) * (target - target.mean(-1, keepdim=True)).norm(dim=-1, keepdim=True)
    # noise with the signal's energy, nearly orthogonal to it: about 0 dB
    assert torch.allclose(si_snr(target + noise, target), torch.zeros(2), atol=0.5)
    with pytest.raises(ValueError):
        multi_resolution_mel_loss(target[:, :100], target, SAMPLING_RATE)


def test_phase_loss_sees_frame_synchronous_phase_and_forgives_a_delay():
    """The buzz of a Fourier decoder: each frame's partials restart at the same phase. Rebuilding a voice from
    its own STFT magnitudes with zero phase in every 4-hop frame keeps each frame's magnitudes but not the phase
    advance per hop, which the instantaneous-frequency term must see; a delay of a few samples changes the
    absolute phase alone, which only the instantaneous-phase term may count."""
    t = torch.arange(16000) / SAMPLING_RATE
    target = sum(0.1 / k * torch.sin(2 * math.pi * 100 * k * t + k) for k in range(1, 8))[None]
    window = torch.hann_window(4 * HOP)
    magnitude = torch.stft(target, 4 * HOP, HOP, window=window, return_complex=True).abs()
    frame_synchronous = torch.istft(magnitude.to(torch.complex64), 4 * HOP, HOP, window=window, length=16000)
    delayed = torch.roll(target, 7, dims=1)
    terms = {name: phase_loss(audio, target, 4 * HOP, HOP // 4)
             for name, audio in (("same", target), ("buzz", frame_synchronous), ("delayed", delayed))}
    assert all(float(value) < 2e-3 for value in terms["same"].values())  # eps smooths the weakest bins
    assert terms["buzz"]["iaf"] > 0.5 and terms["buzz"]["gd"] > 0.5
    assert terms["delayed"]["iaf"] < 0.01 and terms["delayed"]["gd"] < 0.03 and terms["delayed"]["ip"] > 0.2


def test_phase_loss_gradient_is_finite_at_silence_and_lowers_the_loss():
    """A silent prediction (a decoder's start) has no phase: the gradient must stay finite there, and gradient
    steps on the waveform must lower every term."""
    target = torch.stack([_speechlike(4000, 0), _speechlike(4000, 1)])
    silent = torch.zeros_like(target, requires_grad=True)
    sum(phase_loss(silent, target, 4 * HOP, HOP // 4).values()).backward()
    assert torch.isfinite(silent.grad).all()
    waveform = (target + 0.05 * torch.randn_like(target)).requires_grad_(True)
    optimizer = torch.optim.Adam([waveform], lr=1e-3)
    with torch.no_grad():
        first = {name: float(value) for name, value in phase_loss(waveform, target, 4 * HOP, HOP // 4).items()}
    for _ in range(30):
        optimizer.zero_grad()
        sum(phase_loss(waveform, target, 4 * HOP, HOP // 4).values()).backward()
        optimizer.step()
    with torch.no_grad():
        last = {name: float(value) for name, value in phase_loss(waveform, target, 4 * HOP, HOP // 4).items()}
    assert all(last[name] < 0.7 * first[name] for name in first), (first, last)
    with pytest.raises(ValueError):
        phase_loss(target[:, :100], target, 4 * HOP, HOP // 4)


# ---------------------------------------------------------------------------------- feature extractor


def test_feature_extractor_pads_and_masks():
    extractor = NS2CodecFeatureExtractor()
    assert extractor.sampling_rate == SAMPLING_RATE
    batch = extractor([np.ones(300), np.ones(500, dtype=np.float64), torch.ones(10)], sampling_rate=SAMPLING_RATE)
    assert batch["input_values"].shape == (3, 500) and batch["input_values"].dtype == torch.float32
    assert batch["padding_mask"].dtype == torch.bool
    assert batch["padding_mask"].sum(1).tolist() == [300, 500, 10]
    assert torch.all(batch["input_values"][0, 300:] == 0)
    single = extractor(np.ones(7), sampling_rate=SAMPLING_RATE, return_tensors="np")
    assert single["input_values"].shape == (1, 7) and single["padding_mask"].dtype == bool


def test_feature_extractor_warns_without_sampling_rate(caplog):
    with caplog.at_level("WARNING"):
        NS2CodecFeatureExtractor()(np.ones(10))
    assert "sampling_rate" in caplog.text


@pytest.mark.parametrize(
    "raw_audio, sampling_rate, message",
    [
        (np.ones(100), 22050, "sampling rate 22050"),
        (np.zeros(0), SAMPLING_RATE, "empty"),
        ([], SAMPLING_RATE, "empty"),
        (np.array([0.0, np.nan, 0.0]), SAMPLING_RATE, "NaN"),
        ([np.ones(10), np.array([np.inf, 0.0])], SAMPLING_RATE, r"raw_audio\[1\].*infinite"),
        (np.ones((2, 100)), SAMPLING_RATE, "mono"),
        ([np.ones((100, 2))], SAMPLING_RATE, "mono"),
    ],
)
def test_feature_extractor_rejects_bad_audio(raw_audio, sampling_rate, message):
    with pytest.raises(AudioInputError, match=message):
        NS2CodecFeatureExtractor()(raw_audio, sampling_rate=sampling_rate)
