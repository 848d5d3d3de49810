"""Discriminators for adversarial codec training: HiFi-GAN's multi-period discriminator (MPD) and EnCodec's
multi-scale STFT discriminator (MS-STFTD), combined by [`NS2CodecDiscriminator`].

Every discriminator takes audio `(batch, samples)` and returns `(logits, feature_maps)`: `logits[i]` is the
output of sub-discriminator `i` and `feature_maps[i]` the list of its intermediate activations (for the feature
matching loss). Sizes come from the `discriminator_*` fields of [`NS2CodecConfig`].
"""

from __future__ import annotations

import torch
from torch import nn

from .configuration_codec import NS2CodecConfig

DiscriminatorOutput = tuple[list[torch.Tensor], list[list[torch.Tensor]]]


def _weight_norm(module: nn.Module) -> nn.Module:
    return nn.utils.parametrizations.weight_norm(module)


class NS2PeriodDiscriminator(nn.Module):
    """Folds audio into `(samples / period, period)` and runs 2-D convs over the first axis (HiFi-GAN)."""

    def __init__(self, period: int, channels: list[int], kernel_size: int = 5, stride: int = 3):
        super().__init__()
        self.period = period
        self.convs = nn.ModuleList()
        in_channels = 1
        for index, out_channels in enumerate(channels):
            layer_stride = stride if index < len(channels) - 1 else 1
            self.convs.append(
                _weight_norm(nn.Conv2d(in_channels, out_channels, (kernel_size, 1), (layer_stride, 1),
                                       padding=(kernel_size // 2, 0)))
            )
            in_channels = out_channels
        self.conv_post = _weight_norm(nn.Conv2d(in_channels, 1, (3, 1), padding=(1, 0)))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """`audio` `(batch, samples)` -> logits `(batch, 1, steps, period)` and the conv activations."""
        batch, n_samples = audio.shape
        extra = (-n_samples) % self.period
        if extra:
            mode = "reflect" if extra < n_samples else "constant"
            audio = nn.functional.pad(audio.unsqueeze(1), (0, extra), mode=mode).squeeze(1)
        hidden_states = audio.view(batch, 1, -1, self.period)
        feature_maps = []
        for conv in self.convs:
            hidden_states = nn.functional.leaky_relu(conv(hidden_states), 0.1)
            feature_maps.append(hidden_states)
        logits = self.conv_post(hidden_states)
        feature_maps.append(logits)
        return logits, feature_maps


class NS2MultiPeriodDiscriminator(nn.Module):
    """One [`NS2PeriodDiscriminator`] per period in `config.discriminator_periods`."""

    def __init__(self, config: NS2CodecConfig):
        super().__init__()
        self.discriminators = nn.ModuleList(
            NS2PeriodDiscriminator(period, config.discriminator_period_channels)
            for period in config.discriminator_periods
        )

    def forward(self, audio: torch.Tensor) -> DiscriminatorOutput:
        outputs = [discriminator(audio) for discriminator in self.discriminators]
        return [logits for logits, _ in outputs], [maps for _, maps in outputs]


class NS2STFTDiscriminator(nn.Module):
    """2-D convs over the complex STFT (real and imaginary parts as two channels), dilated in time and strided
    in frequency (EnCodec)."""

    def __init__(self, n_fft: int, channels: int, dilations: tuple[int, ...] = (1, 2, 4)):
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = n_fft // 4
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.convs = nn.ModuleList([_weight_norm(nn.Conv2d(2, channels, (3, 9), padding=(1, 4)))])
        for dilation in dilations:
            self.convs.append(
                _weight_norm(nn.Conv2d(channels, channels, (3, 9), stride=(1, 2), dilation=(dilation, 1),
                                       padding=(dilation, 4)))
            )
        self.convs.append(_weight_norm(nn.Conv2d(channels, channels, (3, 3), padding=(1, 1))))
        self.conv_post = _weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """`audio` `(batch, samples)` -> logits `(batch, 1, frames, bins')` and the conv activations."""
        spectrum = torch.stft(
            audio, self.n_fft, self.hop_length, window=self.window.to(audio.dtype), normalized=True,
            pad_mode="constant", return_complex=True,
        )  # (batch, bins, frames)
        hidden_states = torch.stack([spectrum.real, spectrum.imag], dim=1).transpose(2, 3)  # (batch, 2, frames, bins)
        feature_maps = []
        for conv in self.convs:
            hidden_states = nn.functional.leaky_relu(conv(hidden_states), 0.2)
            feature_maps.append(hidden_states)
        logits = self.conv_post(hidden_states)
        feature_maps.append(logits)
        return logits, feature_maps


class NS2MultiScaleSTFTDiscriminator(nn.Module):
    """One [`NS2STFTDiscriminator`] per FFT size in `config.discriminator_stft_n_ffts`."""

    def __init__(self, config: NS2CodecConfig):
        super().__init__()
        self.discriminators = nn.ModuleList(
            NS2STFTDiscriminator(n_fft, config.discriminator_stft_channels)
            for n_fft in config.discriminator_stft_n_ffts
        )

    def forward(self, audio: torch.Tensor) -> DiscriminatorOutput:
        outputs = [discriminator(audio) for discriminator in self.discriminators]
        return [logits for logits, _ in outputs], [maps for _, maps in outputs]


class NS2CodecDiscriminator(nn.Module):
    """Multi-period + multi-scale STFT discriminators; outputs are the two lists concatenated (MPD first)."""

    def __init__(self, config: NS2CodecConfig):
        super().__init__()
        self.multi_period = NS2MultiPeriodDiscriminator(config)
        self.multi_scale_stft = NS2MultiScaleSTFTDiscriminator(config)

    def forward(self, audio: torch.Tensor) -> DiscriminatorOutput:
        """`audio` `(batch, samples)` -> (logits list, feature-map lists), one entry per sub-discriminator."""
        if audio.dim() != 2:
            raise ValueError(f"`audio` must be (batch, samples), got shape {tuple(audio.shape)}.")
        period_logits, period_maps = self.multi_period(audio)
        stft_logits, stft_maps = self.multi_scale_stft(audio)
        return period_logits + stft_logits, period_maps + stft_maps


__all__ = [
    "NS2CodecDiscriminator",
    "NS2MultiPeriodDiscriminator",
    "NS2MultiScaleSTFTDiscriminator",
    "NS2PeriodDiscriminator",
    "NS2STFTDiscriminator",
]
