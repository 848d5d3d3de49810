"""Configuration of the NaturalSpeech 2 neural audio codec."""

from __future__ import annotations

import math

from transformers import PreTrainedConfig


class NS2CodecConfig(PreTrainedConfig):
    r"""
    Configuration of [`NS2CodecModel`], the SoundStream-style codec of NaturalSpeech 2 (paper section 3.1):
    a convolutional encoder downsamples 16 kHz audio 200 times to a `latent_dim` vector per 12.5 ms frame, a
    residual vector quantizer (RVQ) turns each vector into `num_quantizers` codes, and a mirrored decoder turns
    the quantized latent back into a waveform. The defaults are the paper's sizes (16 quantizers x 1024 codes,
    latent dim 256); [`NS2CodecConfig.tiny`] is a CPU-sized variant with the same hop and sampling rate.

    Where the paper is silent the choices are ours (marked "ours" below): Snake activations and weight-normalised
    convolutions as in DAC, residual units with dilations (1, 3, 9) as in SoundStream, EMA codebooks with
    dead-code restart as in EnCodec.

    Args:
        sampling_rate (`int`, defaults to 16000):
            Sampling rate of the audio the codec reads and writes, in Hz.
        downsampling_ratios (`tuple[int]`, defaults to `(2, 4, 5, 5)`):
            Strides of the encoder's downsampling blocks; their product is the hop length (200 samples, so
            80 latent frames per second at 16 kHz). The decoder upsamples with the same ratios reversed.
        encoder_hidden_size (`int`, defaults to 40):
            Channels after the encoder's input convolution; each downsampling block doubles them (ours).
        decoder_type (`str`, defaults to `"convolutional"`):
            `"convolutional"`: the mirrored decoder, transposed convolutions upsampling by `downsampling_ratios`
            reversed (SoundStream/DAC). `"fourier"` (ours, after Vocos): ConvNeXt blocks at the frame rate predict
            an STFT frame per latent frame, and an inverse STFT at hop `hop_length` makes the waveform — no
            upsampling layer, so nothing imprints the frame grid on the audio as a periodic buzz (see the model
            card's ablation).
        decoder_hidden_size (`int`, defaults to 1024):
            Convolutional decoder: channels after its input convolution; each upsampling block halves them (ours).
            Fourier decoder: the width of its ConvNeXt blocks.
        fourier_decoder_layers (`int`, defaults to 8):
            ConvNeXt blocks of the Fourier decoder (Vocos: 8).
        fourier_intermediate_size (`int`, defaults to 1536):
            Hidden width of each ConvNeXt block's pointwise MLP (Vocos: 3 x the block width).
        fourier_n_fft (`int`, *optional*):
            FFT and window size of the Fourier decoder's inverse STFT; default 4 x `hop_length` (Vocos' overlap).
        harmonic_phase_max_hz (`float`, defaults to 2000.0):
            Fourier decoder, when `decode` is given an f0 contour (ours): up to this frequency, voiced frames take
            the phase of a harmonic excitation at that f0 instead of the predicted phase (see
            `NS2CodecModel.decode`). 2 kHz was chosen with the shipped model on its tuning list (16 utterances
            disjoint from the test list, 50 steps): WER 0.217 against 0.242 at 4 kHz, 0.248 at 8 kHz and 0.240
            with the decoder's own phases.
        pitch_postfilter (`float`, defaults to 0.0):
            Fourier decoder with an f0 contour (ours; the pitch postfilter of speech codecs, done in the STFT): the
            voiced frames' magnitudes below `harmonic_phase_max_hz` are multiplied by `(0.1 + 0.9 C) **
            pitch_postfilter`, `C` the harmonic excitation's magnitude spectrum scaled to peak 1 in each frame (1 at
            the harmonics of f0, near 0 between them), then rescaled to the frame's energy in that band. The
            decoder's magnitudes are smeared between the harmonics; this deepens the valleys. 0 turns it off.
            Measured (training/README.md, "Pitch postfilter"): DNSMOS OVRL of the resynthesis +0.05 to +0.28, but
            the shipped model's output reads worse with it (WER +0.003 to +0.024), so the release keeps 0.
        residual_dilations (`tuple[int]`, defaults to `(1, 3, 9)`):
            Dilations of the residual units in every encoder and decoder block.
        kernel_size (`int`, defaults to 7):
            Kernel size of the input/output and residual-unit convolutions.
        latent_dim (`int`, defaults to 256):
            Dimension of the latent frame vectors and of the codebook vectors (the diffusion target's channels).
        num_quantizers (`int`, defaults to 16):
            Number of residual quantizers.
        codebook_size (`int`, defaults to 1024):
            Codes per quantizer.
        quantizer_dropout (`float`, defaults to 0.5):
            In training, the probability that a batch is quantized with a random number of quantizers, drawn
            uniformly from 1..`num_quantizers`, instead of all of them (SoundStream's quantizer dropout; the
            decoder learns to decode partial sums, which also makes it tolerant of imperfect latents).
        commitment_weight (`float`, defaults to 0.25):
            Weight of the commitment loss (`NS2CodecOutput.commitment_loss`) in the codec's training loss.
        codebook_ema_decay (`float`, defaults to 0.99):
            Decay of the exponential moving averages that update the codebooks (no codebook loss is used).
        dead_code_threshold (`float`, defaults to 0.1):
            A code whose moving-average usage (assignments per training step) falls below this is restarted at a
            random encoder frame of the current batch. Must be > 0. Codes start unused, so the first training step
            initialises every codebook from data.
        discriminator_periods (`tuple[int]`, defaults to `(2, 3, 5, 7, 11)`):
            Periods of the multi-period discriminator (HiFi-GAN).
        discriminator_period_channels (`tuple[int]`, defaults to `(32, 128, 512, 1024, 1024)`):
            Output channels of each convolution of one period sub-discriminator.
        discriminator_stft_n_ffts (`tuple[int]`, defaults to `(1024, 512, 256)`):
            FFT sizes of the multi-scale STFT discriminator (EnCodec); hop is a quarter of each.
        discriminator_stft_channels (`int`, defaults to 32):
            Channels of the STFT sub-discriminators' convolutions.
    """

    model_type = "ns2_codec"

    sampling_rate: int = 16000
    downsampling_ratios: list[int] | tuple[int, ...] = (2, 4, 5, 5)
    encoder_hidden_size: int = 40
    decoder_type: str = "convolutional"
    decoder_hidden_size: int = 1024
    fourier_decoder_layers: int = 8
    fourier_intermediate_size: int = 1536
    fourier_n_fft: int | None = None
    harmonic_phase_max_hz: float = 2000.0
    pitch_postfilter: float = 0.0
    residual_dilations: list[int] | tuple[int, ...] = (1, 3, 9)
    kernel_size: int = 7
    latent_dim: int = 256
    num_quantizers: int = 16
    codebook_size: int = 1024
    quantizer_dropout: float = 0.5
    commitment_weight: float = 0.25
    codebook_ema_decay: float = 0.99
    dead_code_threshold: float = 0.1
    discriminator_periods: list[int] | tuple[int, ...] = (2, 3, 5, 7, 11)
    discriminator_period_channels: list[int] | tuple[int, ...] = (32, 128, 512, 1024, 1024)
    discriminator_stft_n_ffts: list[int] | tuple[int, ...] = (1024, 512, 256)
    discriminator_stft_channels: int = 32

    def __post_init__(self, **kwargs):
        for name in ("downsampling_ratios", "residual_dilations", "discriminator_periods",
                     "discriminator_period_channels", "discriminator_stft_n_ffts"):
            values = list(getattr(self, name))
            if not values or any(int(value) < 1 for value in values):
                raise ValueError(f"`{name}` must be a non-empty list of positive integers, got {values}.")
            setattr(self, name, [int(value) for value in values])
        if min(self.downsampling_ratios) < 2:
            raise ValueError(f"every downsampling ratio must be >= 2, got {self.downsampling_ratios}.")
        if self.decoder_type not in ("convolutional", "fourier"):
            raise ValueError(f"`decoder_type` must be 'convolutional' or 'fourier', got {self.decoder_type!r}.")
        if self.fourier_n_fft is None:
            self.fourier_n_fft = 4 * math.prod(self.downsampling_ratios)
        hop = math.prod(self.downsampling_ratios)
        if self.fourier_n_fft < hop or (self.fourier_n_fft - hop) % 2:
            raise ValueError(
                f"`fourier_n_fft` ({self.fourier_n_fft}) must be >= the hop ({hop}) and differ from it by an even "
                "number of samples (the inverse STFT trims half the overlap at each end)."
            )
        if not 0 < self.harmonic_phase_max_hz <= self.sampling_rate / 2:
            raise ValueError(
                f"`harmonic_phase_max_hz` must lie in (0, sampling_rate / 2], got {self.harmonic_phase_max_hz}."
            )
        if self.pitch_postfilter < 0:
            raise ValueError(f"`pitch_postfilter` must be >= 0 (0 = off), got {self.pitch_postfilter}.")
        if self.decoder_type == "convolutional" and self.decoder_hidden_size % 2 ** len(self.downsampling_ratios) != 0:
            raise ValueError(
                f"`decoder_hidden_size` ({self.decoder_hidden_size}) must be divisible by "
                f"2 ** len(downsampling_ratios) = {2 ** len(self.downsampling_ratios)} (it halves per block)."
            )
        if self.codebook_size < 2 or self.num_quantizers < 1 or self.latent_dim < 1:
            raise ValueError("`codebook_size` must be >= 2, `num_quantizers` and `latent_dim` >= 1.")
        if not 0.0 <= self.quantizer_dropout <= 1.0:
            raise ValueError(f"`quantizer_dropout` is a probability, got {self.quantizer_dropout}.")
        if not 0.0 < self.codebook_ema_decay < 1.0:
            raise ValueError(f"`codebook_ema_decay` must be in (0, 1), got {self.codebook_ema_decay}.")
        if self.dead_code_threshold <= 0.0:
            raise ValueError(f"`dead_code_threshold` must be > 0, got {self.dead_code_threshold}.")
        super().__post_init__(**kwargs)

    # The fields that fix the latent space (what the encoder and the RVQ produce); the decoder and discriminator
    # fields can change without invalidating codes, latents or an NS2 model trained on them.
    LATENT_SPACE_FIELDS = ("sampling_rate", "downsampling_ratios", "encoder_hidden_size", "residual_dilations",
                           "kernel_size", "latent_dim", "num_quantizers", "codebook_size")

    def latent_space(self) -> dict:
        """`{field: value}` of `LATENT_SPACE_FIELDS`: two codecs with equal values and equal encoder and codebook
        weights produce the same codes and latents, whatever their decoders."""
        return {name: getattr(self, name) for name in self.LATENT_SPACE_FIELDS}

    @property
    def hop_length(self) -> int:
        """Audio samples per latent frame: the product of `downsampling_ratios` (200 by default)."""
        return math.prod(self.downsampling_ratios)

    @property
    def frame_rate(self) -> float:
        """Latent frames per second: `sampling_rate / hop_length` (80.0 by default)."""
        return self.sampling_rate / self.hop_length

    @classmethod
    def tiny(cls, **kwargs) -> "NS2CodecConfig":
        """A CPU-sized codec with the paper's hop (200) and sampling rate (16 kHz), latent dim 32 and
        8 quantizers x 256 codes; small discriminators (and a 4-block Fourier decoder when `decoder_type="fourier"`).
        Keyword arguments override fields."""
        fields = dict(
            encoder_hidden_size=8,
            decoder_hidden_size=128,
            fourier_decoder_layers=4,
            fourier_intermediate_size=384,
            latent_dim=32,
            num_quantizers=8,
            codebook_size=256,
            discriminator_period_channels=(8, 16, 32, 32),
            discriminator_stft_channels=8,
        )
        fields.update(kwargs)
        return cls(**fields)


__all__ = ["NS2CodecConfig"]
