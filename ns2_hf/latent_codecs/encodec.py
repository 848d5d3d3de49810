"""transformers' `EncodecModel` (facebook/encodec_24khz) as an NS2 latent space — the codec Amphion's NS2 uses.

EnCodec's residual quantizer works in the encoder's own space (`hidden_size`, Euclidean codebooks), so the latent is
the plain sum of the selected codebook vectors and the codebooks are the latent-space vectors. The number of
codebooks is EnCodec's bandwidth: `num_quantizers` must be one its `target_bandwidths` give (2, 4, 8, 16 or 32 for
encodec_24khz). Chunked, normalised EnCodec (encodec_48khz: stereo, a loudness scale per chunk that the latents do
not carry) is refused.
"""

from __future__ import annotations

import math

import torch
# PreTrainedModel is bound here so diffusers can find this class's loading method (see NS2Pipeline).
from transformers import EncodecConfig, EncodecModel, PreTrainedModel  # noqa: F401

from .latent_codec import NS2TransformersCodecConfig, NS2TransformersCodecModel


class NS2EncodecCodecConfig(NS2TransformersCodecConfig):
    r"""[`NS2TransformersCodecConfig`] of an `EncodecModel`: hop = product of `upsampling_ratios` (320 at 24 kHz, 75
    frames/s), latent dim = `hidden_size` (128), codebooks = those of one of `target_bandwidths` (default the
    largest)."""

    model_type = "ns2_encodec_codec"
    sub_configs_defaults = {"codec_config": EncodecConfig}

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        codec = self.codec_config
        if codec.normalize or codec.chunk_length_s is not None:
            raise ValueError("EnCodec with `normalize` or `chunk_length_s` (encodec_48khz) is not supported: its "
                             "per-chunk loudness scale is not part of the latent.")
        if codec.codebook_dim != codec.hidden_size:
            raise ValueError(f"EnCodec's `codebook_dim` ({codec.codebook_dim}) must equal its `hidden_size` "
                             f"({codec.hidden_size}): the codebooks must live in the latent space.")
        if self.num_quantizers not in self.quantizers_per_bandwidth.values():
            raise ValueError(f"EnCodec uses {self.quantizers_per_bandwidth} codebooks at its bandwidths (kbps): "
                             f"`num_quantizers` {self.num_quantizers} is none of them.")

    @property
    def hop_length(self) -> int:
        return int(self.codec_config.hop_length)

    @property
    def max_quantizers(self) -> int:
        return int(self.codec_config.num_quantizers)

    @property
    def quantizers_per_bandwidth(self) -> dict:
        """`{bandwidth (kbps): codebooks EnCodec uses at it}` for its `target_bandwidths` (as `EncodecModel` counts)."""
        bits_per_second = math.log2(self.codec_config.codebook_size) * self.codec_config.frame_rate
        return {bandwidth: max(1, math.floor(bandwidth * 1000 / bits_per_second))
                for bandwidth in self.codec_config.target_bandwidths}

    @property
    def bandwidth(self) -> float:
        """The target bandwidth (kbps) at which EnCodec uses `num_quantizers` codebooks."""
        return next(bandwidth for bandwidth, count in self.quantizers_per_bandwidth.items()
                    if count == self.num_quantizers)


class NS2EncodecCodecModel(NS2TransformersCodecModel):
    """`EncodecModel` as an NS2 latent space (see [`NS2TransformersCodecModel`])."""

    config_class = NS2EncodecCodecConfig
    codec_class = EncodecModel

    def _encode_codes(self, waveform: torch.Tensor) -> torch.LongTensor:
        return self.codec.encode(waveform, bandwidth=self.config.bandwidth).audio_codes[0]  # one chunk

    def _codes_to_latents(self, audio_codes: torch.LongTensor) -> torch.Tensor:
        return self.codec.quantizer.decode(audio_codes.transpose(0, 1))

    def _decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        return self.codec.decoder(latents)[:, 0]

    def _codebooks(self) -> torch.Tensor:
        layers = self.codec.quantizer.layers[: self.config.num_quantizers]
        return torch.stack([layer.codebook.embed for layer in layers])


__all__ = ["NS2EncodecCodecConfig", "NS2EncodecCodecModel"]
