"""transformers' `DacModel` (Descript Audio Codec: descript/dac_16khz, dac_24khz, dac_44khz) as an NS2 latent space.

DAC quantizes in small factorized spaces (each codebook `codebook_dim` wide, L2-normalised lookup) and projects each
selected code back with its own `out_proj` (a 1x1 convolution with bias) before summing; the latent is that sum,
`hidden_size` wide. The latent-space codebooks are therefore `out_proj_j(codebook_j)` — bias included, so their
sum over the quantizers is exactly the latent. DAC's nearest-code search happens in the normalised factor space, not
against these vectors: CE-RVQ then trains the model towards DAC's codes with a Euclidean proxy of its search.
"""

from __future__ import annotations

import torch
# PreTrainedModel is bound here so diffusers can find this class's loading method (see NS2Pipeline).
from transformers import DacConfig, DacModel, PreTrainedModel  # noqa: F401

from .latent_codec import NS2TransformersCodecConfig, NS2TransformersCodecModel


class NS2DacCodecConfig(NS2TransformersCodecConfig):
    r"""[`NS2TransformersCodecConfig`] of a `DacModel`: hop = product of `downsampling_ratios` (320 at 16 kHz, 50
    frames/s), latent dim = `hidden_size` (1024 for the released checkpoints), `n_codebooks` codebooks."""

    model_type = "ns2_dac_codec"
    sub_configs_defaults = {"codec_config": DacConfig}

    @property
    def hop_length(self) -> int:
        return int(self.codec_config.hop_length)

    @property
    def max_quantizers(self) -> int:
        return int(self.codec_config.n_codebooks)


class NS2DacCodecModel(NS2TransformersCodecModel):
    """`DacModel` as an NS2 latent space (see [`NS2TransformersCodecModel`])."""

    config_class = NS2DacCodecConfig
    codec_class = DacModel

    def _encode_codes(self, waveform: torch.Tensor) -> torch.LongTensor:
        return self.codec.encode(waveform, n_quantizers=self.config.num_quantizers).audio_codes

    def _codes_to_latents(self, audio_codes: torch.LongTensor) -> torch.Tensor:
        return self.codec.quantizer.from_codes(audio_codes)[0]

    def _decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        return self.codec.decode(quantized_representation=latents).audio_values

    def _codebooks(self) -> torch.Tensor:
        quantizers = self.codec.quantizer.quantizers[: self.config.num_quantizers]
        # out_proj of every code vector at once: codebook (K, d) as a (1, d, K) sequence -> (1, D, K)
        return torch.stack([quantizer.out_proj(quantizer.codebook.weight.t()[None])[0].t() for quantizer in quantizers])


__all__ = ["NS2DacCodecConfig", "NS2DacCodecModel"]
