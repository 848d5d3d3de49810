"""The NaturalSpeech 2 neural audio codec: convolutional encoder, residual vector quantizer, mirrored decoder.

Reads top to bottom: activation and convolution helpers, residual unit, encoder/decoder blocks, encoder,
decoder, then [`NS2CodecModel`]. Audio is `(batch, samples)` at `config.sampling_rate`; latents are
channel-first `(batch, latent_dim, frames)` with `frames = ceil(samples / config.hop_length)` (the input is
right-padded with zeros to a multiple of the hop).

Padding: every layer zeroes its output outside the valid frames, so an item of a padded batch gives exactly
what it gives alone (the convolutions then see the same zeros past its end as their own zero padding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from ..audio.pitch import F0_MIN_HZ as HARMONIC_EXCITATION_MIN_HZ  # the lowest f0 the harmonic excitation follows
from .configuration_codec import NS2CodecConfig
from .quantizer import NS2ResidualVectorQuantizer


@dataclass
class NS2CodecEncoderOutput(ModelOutput):
    """
    Args:
        latents (`torch.Tensor` of shape `(batch, latent_dim, frames)`):
            Continuous encoder output before quantization (zero in padded frames).
        quantized_latents (`torch.Tensor` of shape `(batch, latent_dim, frames)`):
            Sum of the selected codebook vectors: the latent NaturalSpeech 2's diffusion model generates.
            Straight-through gradients flow to the encoder.
        audio_codes (`torch.LongTensor` of shape `(batch, n_quantizers_used, frames)`):
            Code index per quantizer and frame (meaningless in padded frames).
        latent_mask (`torch.BoolTensor` of shape `(batch, frames)`):
            True for frames holding at least one valid input sample.
        commitment_loss (`torch.Tensor`, scalar):
            RVQ commitment loss over valid frames (unweighted; see `NS2CodecConfig.commitment_weight`).
    """

    latents: torch.Tensor | None = None
    quantized_latents: torch.Tensor | None = None
    audio_codes: torch.LongTensor | None = None
    latent_mask: torch.BoolTensor | None = None
    commitment_loss: torch.Tensor | None = None


@dataclass
class NS2CodecDecoderOutput(ModelOutput):
    """
    Args:
        audio_values (`torch.Tensor` of shape `(batch, frames * hop_length)`):
            Decoded waveform in [-1, 1] (zero after the valid frames when a `latent_mask` is given).
    """

    audio_values: torch.Tensor | None = None


@dataclass
class NS2CodecOutput(ModelOutput):
    """
    Args:
        audio_values (`torch.Tensor` of shape `(batch, samples)`):
            Reconstructed waveform, trimmed to the input length (zero where `padding_mask` is False).
        latents (`torch.Tensor` of shape `(batch, latent_dim, frames)`):
            Continuous encoder output before quantization.
        quantized_latents (`torch.Tensor` of shape `(batch, latent_dim, frames)`):
            Sum of the selected codebook vectors (the decoder input).
        audio_codes (`torch.LongTensor` of shape `(batch, n_quantizers_used, frames)`):
            Code index per quantizer and frame.
        latent_mask (`torch.BoolTensor` of shape `(batch, frames)`):
            True for valid frames.
        commitment_loss (`torch.Tensor`, scalar):
            RVQ commitment loss (unweighted). The codebooks are updated by moving averages, so there is no
            codebook loss.
    """

    audio_values: torch.Tensor | None = None
    latents: torch.Tensor | None = None
    quantized_latents: torch.Tensor | None = None
    audio_codes: torch.LongTensor | None = None
    latent_mask: torch.BoolTensor | None = None
    commitment_loss: torch.Tensor | None = None


class Snake1d(nn.Module):
    """Snake activation `x + sin^2(alpha x) / alpha` with a learned `alpha` per channel (DAC); Snake(0) = 0."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return hidden_states + (self.alpha + 1e-9).reciprocal() * torch.sin(self.alpha * hidden_states).pow(2)


def _conv1d(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1,
            padding: int | None = None, init_gain: float = 1.0) -> nn.Conv1d:
    """Weight-normalised Conv1d; `padding` defaults to keeping the length (odd kernels). `init_gain` scales its
    initial weights (read by `NS2CodecModel._init_weights`)."""
    if padding is None:
        padding = dilation * (kernel_size - 1) // 2
    conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, dilation=dilation, padding=padding)
    conv.init_gain = init_gain
    return nn.utils.parametrizations.weight_norm(conv)


def _mask(hidden_states: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return hidden_states if mask is None else hidden_states * mask


def _expand_mask(latent_mask: torch.Tensor | None, samples_per_frame: int, dtype: torch.dtype) -> torch.Tensor | None:
    """`(batch, frames)` bool frame mask -> `(batch, 1, frames * samples_per_frame)` float mask."""
    if latent_mask is None:
        return None
    return latent_mask.repeat_interleave(samples_per_frame, dim=1).unsqueeze(1).to(dtype)


class NS2CodecResidualUnit(nn.Module):
    """Snake -> dilated conv -> Snake -> 1x1 conv, added to the input. The 1x1 conv starts at a tenth of the
    usual scale, so that a stack of units initially keeps the signal's scale."""

    def __init__(self, channels: int, kernel_size: int, dilation: int):
        super().__init__()
        self.activation1 = Snake1d(channels)
        self.conv1 = _conv1d(channels, channels, kernel_size, dilation=dilation)
        self.activation2 = Snake1d(channels)
        self.conv2 = _conv1d(channels, channels, 1, init_gain=0.1)

    def forward(self, hidden_states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """`(batch, channels, length)` -> same shape; `mask` `(batch, 1, length)` zeroes padded positions."""
        residual = self.conv2(self.activation2(self.conv1(self.activation1(hidden_states))))
        return _mask(hidden_states + residual, mask)


class NS2CodecEncoderBlock(nn.Module):
    """Residual units at the input rate, then Snake and a strided conv (kernel 2*stride) to `stride`x fewer steps."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, config: NS2CodecConfig):
        super().__init__()
        self.residual_units = nn.ModuleList(
            NS2CodecResidualUnit(in_channels, config.kernel_size, dilation) for dilation in config.residual_dilations
        )
        self.activation = Snake1d(in_channels)
        self.downsample = _conv1d(in_channels, out_channels, 2 * stride, stride=stride, padding=math.ceil(stride / 2))

    def forward(self, hidden_states: torch.Tensor, mask_in: torch.Tensor | None, mask_out: torch.Tensor | None):
        """`(batch, in_channels, length)` -> `(batch, out_channels, length / stride)`."""
        for unit in self.residual_units:
            hidden_states = unit(hidden_states, mask_in)
        return _mask(self.downsample(self.activation(hidden_states)), mask_out)


class NS2CodecDecoderBlock(nn.Module):
    """Snake and a transposed conv (kernel 2*stride) to `stride`x more steps, then residual units."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, config: NS2CodecConfig):
        super().__init__()
        self.activation = Snake1d(in_channels)
        upsample = nn.ConvTranspose1d(
            in_channels, out_channels, 2 * stride, stride=stride,
            padding=math.ceil(stride / 2), output_padding=stride % 2,
        )
        self.upsample = nn.utils.parametrizations.weight_norm(upsample)
        self.residual_units = nn.ModuleList(
            NS2CodecResidualUnit(out_channels, config.kernel_size, dilation) for dilation in config.residual_dilations
        )

    def forward(self, hidden_states: torch.Tensor, mask_out: torch.Tensor | None) -> torch.Tensor:
        """`(batch, in_channels, length)` -> `(batch, out_channels, length * stride)`."""
        hidden_states = _mask(self.upsample(self.activation(hidden_states)), mask_out)
        for unit in self.residual_units:
            hidden_states = unit(hidden_states, mask_out)
        return hidden_states


class NS2CodecEncoder(nn.Module):
    """Waveform `(batch, 1, frames * hop)` -> latents `(batch, latent_dim, frames)`; channels double per block."""

    def __init__(self, config: NS2CodecConfig):
        super().__init__()
        channels = config.encoder_hidden_size
        self.conv_in = _conv1d(1, channels, config.kernel_size)
        self.blocks = nn.ModuleList()
        self.samples_per_frame = [config.hop_length]  # of the input of each block, then of the output
        for stride in config.downsampling_ratios:
            self.blocks.append(NS2CodecEncoderBlock(channels, 2 * channels, stride, config))
            self.samples_per_frame.append(self.samples_per_frame[-1] // stride)
            channels *= 2
        self.activation = Snake1d(channels)
        self.conv_out = _conv1d(channels, config.latent_dim, 3)

    def forward(self, waveform: torch.Tensor, latent_mask: torch.Tensor | None = None) -> torch.Tensor:
        """`latent_mask` `(batch, frames)` bool, or None when every frame is valid."""
        masks = [_expand_mask(latent_mask, n, waveform.dtype) for n in self.samples_per_frame]
        hidden_states = _mask(self.conv_in(waveform), masks[0])
        for block, mask_in, mask_out in zip(self.blocks, masks[:-1], masks[1:]):
            hidden_states = block(hidden_states, mask_in, mask_out)
        return _mask(self.conv_out(self.activation(hidden_states)), masks[-1])


class NS2CodecDecoder(nn.Module):
    """Latents `(batch, latent_dim, frames)` -> waveform `(batch, frames * hop)` in [-1, 1]; channels halve per
    block, strides are the encoder's reversed."""

    def __init__(self, config: NS2CodecConfig):
        super().__init__()
        channels = config.decoder_hidden_size
        self.conv_in = _conv1d(config.latent_dim, channels, config.kernel_size)
        self.blocks = nn.ModuleList()
        self.samples_per_frame = []  # of each block's output
        samples_per_frame = 1
        for stride in reversed(config.downsampling_ratios):
            self.blocks.append(NS2CodecDecoderBlock(channels, channels // 2, stride, config))
            samples_per_frame *= stride
            self.samples_per_frame.append(samples_per_frame)
            channels //= 2
        self.activation = Snake1d(channels)
        self.conv_out = _conv1d(channels, 1, config.kernel_size)

    def forward(self, latents: torch.Tensor, latent_mask: torch.Tensor | None = None) -> torch.Tensor:
        hidden_states = _mask(self.conv_in(latents), _expand_mask(latent_mask, 1, latents.dtype))
        for block, samples_per_frame in zip(self.blocks, self.samples_per_frame):
            hidden_states = block(hidden_states, _expand_mask(latent_mask, samples_per_frame, latents.dtype))
        waveform = torch.tanh(self.conv_out(self.activation(hidden_states)))
        return _mask(waveform, _expand_mask(latent_mask, self.samples_per_frame[-1], latents.dtype)).squeeze(1)


class NS2CodecConvNeXtBlock(nn.Module):
    """Depthwise conv (kernel 7) -> LayerNorm -> pointwise MLP (GELU) -> layer scale, added to the input
    (ConvNeXt, as in Vocos). Works at the latent frame rate."""

    def __init__(self, channels: int, intermediate_size: int, layer_scale: float):
        super().__init__()
        self.depthwise_conv = nn.Conv1d(channels, channels, 7, padding=3, groups=channels)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.pointwise_conv1 = nn.Linear(channels, intermediate_size)
        self.pointwise_conv2 = nn.Linear(intermediate_size, channels)
        self.layer_scale = nn.Parameter(torch.full((channels,), layer_scale))
        self.layer_scale_init = layer_scale

    def forward(self, hidden_states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """`(batch, channels, frames)` -> same shape; `mask` `(batch, 1, frames)` zeroes padded frames."""
        residual = self.norm(self.depthwise_conv(hidden_states).transpose(1, 2))
        residual = self.pointwise_conv2(nn.functional.gelu(self.pointwise_conv1(residual)))
        return _mask(hidden_states + (self.layer_scale * residual).transpose(1, 2), mask)


class NS2CodecFourierDecoder(nn.Module):
    """Latents `(batch, latent_dim, frames)` -> waveform `(batch, frames * hop)`, with no upsampling layer (ours,
    after Vocos): ConvNeXt blocks at the frame rate predict, per latent frame, the log-magnitude and phase of one
    STFT frame of `fourier_n_fft` points, and an inverse STFT at hop `hop_length` overlap-adds them.

    STFT frame `i` is centred on the centre of latent frame `i`'s samples, `i * hop + hop / 2` (the window starts
    `(n_fft - hop) / 2` samples before the frame), so the output has exactly `frames * hop` samples. The
    overlap-add is normalised by the summed squared window of the *valid* frames, so a padded item decodes to
    exactly what it decodes to alone.
    """

    def __init__(self, config: NS2CodecConfig):
        super().__init__()
        channels = config.decoder_hidden_size
        self.hop_length = config.hop_length
        self.n_fft = config.fourier_n_fft
        self.sampling_rate = config.sampling_rate
        self.harmonic_phase_max_hz = config.harmonic_phase_max_hz
        self.pitch_postfilter = config.pitch_postfilter
        self.conv_in = nn.Conv1d(config.latent_dim, channels, 7, padding=3)
        self.norm_in = nn.LayerNorm(channels, eps=1e-6)
        self.blocks = nn.ModuleList(
            NS2CodecConvNeXtBlock(channels, config.fourier_intermediate_size, 1.0 / config.fourier_decoder_layers)
            for _ in range(config.fourier_decoder_layers)
        )
        self.norm_out = nn.LayerNorm(channels, eps=1e-6)
        self.spectrum_head = nn.Linear(channels, self.n_fft + 2)  # log-magnitude and phase of n_fft / 2 + 1 bins

    def inverse_stft(self, spectrum: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """`spectrum` `(batch, n_fft / 2 + 1, frames)` complex, `frame_mask` `(batch, frames)` float ->
        waveform `(batch, frames * hop)` (zero after the valid frames)."""
        frames = spectrum.shape[-1]
        window = torch.hann_window(self.n_fft, device=spectrum.device)  # made here: no buffer to lose in loading
        segments = torch.fft.irfft(spectrum, n=self.n_fft, dim=1) * window[None, :, None] * frame_mask[:, None]
        trim = (self.n_fft - self.hop_length) // 2
        length = (frames - 1) * self.hop_length + self.n_fft

        def overlap_add(columns):  # (batch, n_fft, frames) -> (batch, frames * hop)
            folded = nn.functional.fold(columns, (1, length), kernel_size=(1, self.n_fft), stride=(1, self.hop_length))
            return folded[:, 0, 0, trim: length - trim]

        envelope = overlap_add(window.square()[None, :, None] * frame_mask[:, None].expand(-1, self.n_fft, -1))
        return overlap_add(segments) / envelope.clamp(min=1e-6)

    def spectrum(self, latents: torch.Tensor, latent_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Latents `(batch, latent_dim, frames)` -> the predicted STFT `(batch, n_fft / 2 + 1, frames)`, complex
        float32 (magnitude and phase of each latent frame's STFT frame)."""
        mask = _expand_mask(latent_mask, 1, latents.dtype)
        hidden_states = _mask(self.norm_in(self.conv_in(latents).transpose(1, 2)).transpose(1, 2), mask)
        for block in self.blocks:
            hidden_states = block(hidden_states, mask)
        head = self.spectrum_head(self.norm_out(hidden_states.transpose(1, 2))).transpose(1, 2).float()
        log_magnitude, phase = head.chunk(2, dim=1)
        magnitude = log_magnitude.exp().clamp(max=1e2)  # Vocos' bound: no overflow early in training
        return torch.polar(magnitude, phase)

    def stft(self, waveform: torch.Tensor, frames: int) -> torch.Tensor:
        """`(batch, samples)` -> `(batch, n_fft / 2 + 1, frames)` complex STFT in this decoder's framing (frame `i`
        centred on `i * hop + hop / 2`, Hann window): what `inverse_stft` inverts."""
        lead = (self.n_fft - self.hop_length) // 2
        padded = nn.functional.pad(waveform.float(), (lead, max(0, frames * self.hop_length + self.n_fft - waveform.shape[-1])))
        segments = padded.unfold(-1, self.n_fft, self.hop_length)[:, :frames]  # (batch, frames, n_fft)
        window = torch.hann_window(self.n_fft, device=waveform.device)
        return torch.fft.rfft(segments * window, dim=-1).transpose(1, 2)

    def harmonic_excitation(self, f0: torch.Tensor) -> torch.Tensor:
        """`(batch, frames)` f0 in Hz (> 0 on every frame) -> `(batch, frames * hop)` sum of unit cosines at its
        harmonics below `harmonic_phase_max_hz`, their phase integrated sample by sample over the contour (linear
        between frame centres), so that each partial advances continuously from frame to frame. f0 below
        `HARMONIC_EXCITATION_MIN_HZ` (the pitch tracker's floor; only a model that has not learnt pitch predicts
        it) is raised to it, which bounds the number of harmonics (an untrained predictor's 0.01 Hz made 150,000)."""
        batch, frames = f0.shape
        f0 = f0.clamp(min=HARMONIC_EXCITATION_MIN_HZ)
        samples = frames * self.hop_length
        positions = (torch.arange(samples, device=f0.device, dtype=torch.float64) + 0.5) / self.hop_length - 0.5
        left = positions.floor().clamp(0, frames - 1).long()
        right = (left + 1).clamp(max=frames - 1)
        fraction = (positions - left).clamp(0, 1)
        f0 = f0.double()
        per_sample = f0[:, left] * (1 - fraction) + f0[:, right] * fraction  # (batch, samples)
        phase = 2 * math.pi * torch.cumsum(per_sample / self.sampling_rate, dim=-1)
        excitation = torch.zeros(batch, samples, dtype=torch.float64, device=f0.device)
        for harmonic in range(1, int(self.harmonic_phase_max_hz / float(f0.min())) + 1):
            audible = (harmonic * per_sample < self.harmonic_phase_max_hz).double()
            excitation += audible * torch.cos(harmonic * phase)
        return excitation.float()

    def with_harmonic_phase(self, spectrum: torch.Tensor, f0: torch.Tensor, voiced: torch.Tensor) -> torch.Tensor:
        """`spectrum` `(batch, n_fft / 2 + 1, frames)` complex, `f0` `(batch, frames)` Hz, `voiced` `(batch, frames)`
        bool -> the spectrum whose voiced frames' bins below `harmonic_phase_max_hz` take the phase of
        `harmonic_excitation(f0)` and, with `pitch_postfilter > 0`, its comb-shaped gain (see `NS2CodecConfig`);
        unvoiced frames and higher bins unchanged."""
        excitation = self.stft(self.harmonic_excitation(f0), spectrum.shape[2])
        bin_hz = torch.arange(spectrum.shape[1], device=spectrum.device) * self.sampling_rate / self.n_fft
        chosen = voiced[:, None, :] & (bin_hz < self.harmonic_phase_max_hz)[None, :, None]
        magnitude = spectrum.abs()
        if self.pitch_postfilter > 0:
            comb = excitation.abs() / excitation.abs().amax(dim=1, keepdim=True).clamp(min=1e-6)
            filtered = magnitude * (0.1 + 0.9 * comb).pow(self.pitch_postfilter)
            band_energy = (magnitude * chosen).square().sum(dim=1, keepdim=True)
            filtered_energy = (filtered * chosen).square().sum(dim=1, keepdim=True).clamp(min=1e-12)
            magnitude = filtered * (band_energy / filtered_energy).sqrt()
        return torch.where(chosen, torch.polar(magnitude, excitation.angle()), spectrum)

    def forward(
        self,
        latents: torch.Tensor,
        latent_mask: torch.Tensor | None = None,
        f0: torch.Tensor | None = None,
        voiced: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if latent_mask is None:
            latent_mask = torch.ones(latents.shape[0], latents.shape[2], dtype=torch.bool, device=latents.device)
        spectrum = self.spectrum(latents, latent_mask)
        if f0 is not None:
            spectrum = self.with_harmonic_phase(spectrum, f0, voiced)
        waveform = self.inverse_stft(spectrum, latent_mask.float()).clamp(-1.0, 1.0)
        return waveform.to(latents.dtype)


class NS2CodecModel(PreTrainedModel):
    """The NaturalSpeech 2 codec: `encode` audio to codes and quantized latents, `decode` latents or codes to
    audio, `forward` for both (training). See [`NS2CodecConfig`] for the architecture."""

    config_class = NS2CodecConfig
    base_model_prefix = "codec"
    main_input_name = "input_values"

    def __init__(self, config: NS2CodecConfig):
        super().__init__(config)
        self.encoder = NS2CodecEncoder(config)
        self.quantizer = NS2ResidualVectorQuantizer(config)
        self.decoder = NS2CodecFourierDecoder(config) if config.decoder_type == "fourier" else NS2CodecDecoder(config)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """Convolutions: weight direction ~ N(0, 1 / fan_in), weight-norm gain = `init_gain` x its norm (so the
        effective weight is `init_gain` x that draw), zero bias. Snake alpha = 1. Codebooks ~ N(0, 1) and unused
        (restarted from data on the first training step). The Fourier decoder's plain convolutions and linear
        layers ~ truncated N(0, 0.02), zero bias (Vocos); layer scales at 1 / number of blocks."""
        if isinstance(module, (nn.Conv1d, nn.Linear)) and not hasattr(module, "parametrizations"):
            init.trunc_normal_(module.weight, std=0.02)
            init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, NS2CodecConvNeXtBlock):
            init.constant_(module.layer_scale, module.layer_scale_init)
        elif isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
            direction = module.parametrizations.weight.original1
            fan_in = module.in_channels * module.kernel_size[0]
            if isinstance(module, nn.ConvTranspose1d):
                fan_in //= module.stride[0]
            init.normal_(direction, std=fan_in**-0.5)
            norm = torch.linalg.vector_norm(direction, dim=tuple(range(1, direction.dim())), keepdim=True)
            init.copy_(module.parametrizations.weight.original0, norm * getattr(module, "init_gain", 1.0))
            init.zeros_(module.bias)
        elif isinstance(module, Snake1d):
            init.ones_(module.alpha)
        elif isinstance(module, NS2ResidualVectorQuantizer):
            init.normal_(module.embeddings)
            init.zeros_(module.cluster_size)
            init.zeros_(module.embedding_sum)

    def get_codebooks(self) -> torch.Tensor:
        """The RVQ codebooks, `(num_quantizers, codebook_size, latent_dim)`."""
        return self.quantizer.codebooks

    def codes_to_latents(self, audio_codes: torch.LongTensor) -> torch.Tensor:
        """`(batch, k, frames)` codes of the first k quantizers -> `(batch, latent_dim, frames)` quantized latents."""
        return self.quantizer.codes_to_latents(audio_codes)

    def _prepare_audio(self, input_values: torch.Tensor, padding_mask: torch.Tensor | None):
        """Validate, zero the padding and right-pad to a multiple of the hop.

        Returns `(batch, 1, frames * hop)` waveform, the `(batch, frames)` latent mask, and that mask or None
        when no frame is padded (the layers then skip masking)."""
        if input_values.dim() == 3 and input_values.shape[1] == 1:
            input_values = input_values[:, 0]
        if input_values.dim() != 2:
            raise ValueError(
                f"`input_values` must be (batch, samples) or (batch, 1, samples) mono audio, got shape "
                f"{tuple(input_values.shape)}."
            )
        batch, n_samples = input_values.shape
        if batch == 0 or n_samples == 0:
            raise ValueError(f"`input_values` is empty (shape {tuple(input_values.shape)}).")
        if not input_values.is_floating_point():
            raise ValueError(f"`input_values` must be a float tensor, got {input_values.dtype}.")
        hop = self.config.hop_length
        n_frames = math.ceil(n_samples / hop)
        if padding_mask is None:
            padding_mask = torch.ones_like(input_values, dtype=torch.bool)
        elif padding_mask.shape != input_values.shape:
            raise ValueError(
                f"`padding_mask` must have the shape of `input_values` {tuple(input_values.shape)}, "
                f"got {tuple(padding_mask.shape)}."
            )
        padding_mask = padding_mask.bool()
        if not bool(padding_mask.any(dim=1).all()):
            raise ValueError("`padding_mask` marks every sample of some batch item as padding.")
        extra = n_frames * hop - n_samples
        waveform = nn.functional.pad(input_values * padding_mask, (0, extra)).unsqueeze(1)
        latent_mask = nn.functional.pad(padding_mask, (0, extra)).view(batch, n_frames, hop).any(dim=2)
        return waveform, latent_mask, (None if bool(latent_mask.all()) else latent_mask)

    def encode(
        self,
        input_values: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        n_quantizers: int | None = None,
        return_dict: bool = True,
    ) -> NS2CodecEncoderOutput | tuple:
        """Encode audio to continuous latents, codes and quantized latents.

        Args:
            input_values: `(batch, samples)` or `(batch, 1, samples)` float audio at `config.sampling_rate`.
            padding_mask: `(batch, samples)` bool, True = real sample (right padding, as the feature extractor
                returns). Padded samples are ignored.
            n_quantizers: use the first k quantizers (1..num_quantizers); None = all (quantizer dropout applies
                in training mode).
        """
        waveform, latent_mask, layer_mask = self._prepare_audio(input_values, padding_mask)
        latents = self.encoder(waveform, layer_mask)
        quantizer_output = self.quantizer(latents, latent_mask, n_quantizers)
        output = NS2CodecEncoderOutput(
            latents=latents,
            quantized_latents=quantizer_output.quantized_latents,
            audio_codes=quantizer_output.audio_codes,
            latent_mask=latent_mask,
            commitment_loss=quantizer_output.commitment_loss,
        )
        return output if return_dict else output.to_tuple()

    def decode(
        self,
        quantized_latents: torch.Tensor | None = None,
        audio_codes: torch.LongTensor | None = None,
        latent_mask: torch.Tensor | None = None,
        f0: torch.Tensor | None = None,
        voiced: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> NS2CodecDecoderOutput | tuple:
        """Decode quantized latents (or codes) to audio.

        Args:
            quantized_latents: `(batch, latent_dim, frames)`, e.g. generated by the diffusion model.
            audio_codes: `(batch, k, frames)` codes of the first k quantizers; pass this or `quantized_latents`.
            latent_mask: `(batch, frames)` bool, True = valid frame; padded frames are ignored and decode to
                silence.
            f0: `(batch, frames)` pitch in Hz, positive on every frame (e.g. interpolated across unvoiced ones),
                with `voiced` `(batch, frames)` bool (default: all voiced). Fourier decoder only (ours): in voiced
                frames, the STFT bins below `config.harmonic_phase_max_hz` take the phase of a harmonic
                excitation at this f0 (`harmonic_excitation`), the magnitudes stay the decoder's. The decoder's
                own phases print the 80 Hz frame grid and lose the pitch of voices below ~110 Hz
                (`benchmarks/codec_phase_ablation.py`); these advance each partial continuously at the given pitch.

        Returns:
            `audio_values` `(batch, frames * hop_length)`.
        """
        if (quantized_latents is None) == (audio_codes is None):
            raise ValueError("Pass exactly one of `quantized_latents` and `audio_codes`.")
        if audio_codes is not None:
            quantized_latents = self.codes_to_latents(audio_codes)
        if quantized_latents.dim() != 3 or quantized_latents.shape[1] != self.config.latent_dim:
            raise ValueError(
                f"`quantized_latents` must be (batch, {self.config.latent_dim}, frames), got "
                f"{tuple(quantized_latents.shape)}."
            )
        if latent_mask is not None:
            if latent_mask.shape != (quantized_latents.shape[0], quantized_latents.shape[2]):
                raise ValueError(
                    f"`latent_mask` must be (batch, frames) = {(quantized_latents.shape[0], quantized_latents.shape[2])}, "
                    f"got {tuple(latent_mask.shape)}."
                )
            latent_mask = None if bool(latent_mask.all()) else latent_mask.bool()
        if f0 is None:
            output = NS2CodecDecoderOutput(audio_values=self.decoder(quantized_latents, latent_mask))
            return output if return_dict else output.to_tuple()
        if self.config.decoder_type != "fourier":
            raise ValueError("decoding with an `f0` contour (harmonic phase) needs the Fourier decoder.")
        expected = (quantized_latents.shape[0], quantized_latents.shape[2])
        voiced = torch.ones(expected, dtype=torch.bool, device=f0.device) if voiced is None else voiced.bool()
        if f0.shape != expected or voiced.shape != expected:
            raise ValueError(f"`f0` and `voiced` must be (batch, frames) = {expected}, got {tuple(f0.shape)} and "
                             f"{tuple(voiced.shape)}.")
        if not bool(torch.isfinite(f0).all()) or bool((f0 <= 0).any()):
            raise ValueError("`f0` must be finite and positive on every frame (interpolate across unvoiced frames).")
        output = NS2CodecDecoderOutput(audio_values=self.decoder(quantized_latents, latent_mask, f0, voiced))
        return output if return_dict else output.to_tuple()

    def forward(
        self,
        input_values: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        n_quantizers: int | None = None,
        f0: torch.Tensor | None = None,
        voiced: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> NS2CodecOutput | tuple:
        """Encode, quantize and decode (arguments as in `encode`; `f0` and `voiced` `(batch, frames)` as in `decode`:
        the harmonic phase, e.g. to train the decoder with the phase it is used with); `audio_values` has the
        input's length."""
        encoded = self.encode(input_values, padding_mask, n_quantizers)
        layer_mask = None if bool(encoded.latent_mask.all()) else encoded.latent_mask
        if f0 is not None:
            decoded = self.decode(encoded.quantized_latents, latent_mask=layer_mask, f0=f0, voiced=voiced)
            audio_values = decoded.audio_values[:, : input_values.shape[-1]]
        else:
            audio_values = self.decoder(encoded.quantized_latents, layer_mask)[:, : input_values.shape[-1]]
        if padding_mask is not None:
            audio_values = audio_values * padding_mask.view_as(audio_values)
        output = NS2CodecOutput(
            audio_values=audio_values,
            latents=encoded.latents,
            quantized_latents=encoded.quantized_latents,
            audio_codes=encoded.audio_codes,
            latent_mask=encoded.latent_mask,
            commitment_loss=encoded.commitment_loss,
        )
        return output if return_dict else output.to_tuple()


__all__ = [
    "NS2CodecDecoderOutput",
    "NS2CodecEncoderOutput",
    "NS2CodecModel",
    "NS2CodecOutput",
]
