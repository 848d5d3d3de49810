"""transformers' `MimiModel` (kyutai/mimi) as an NS2 latent space.

Mimi splits its quantizer: codebook 0 is a semantic RVQ, the rest an acoustic RVQ; each quantizes in a
`vector_quantization_hidden_dimension`-wide space and projects the sum of its codes back with its own `output_proj`
(a 1x1 convolution without bias). Both projections are linear, so the latent-space codebooks are
`output_proj(codebook)` of each RVQ and they sum to the latent exactly. The latent is what Mimi's decoder
upsamples (`hidden_size` wide, 12.5 frames/s at 24 kHz: hop = `frame_size`, 1920 samples). `num_quantizers`
counts the semantic codebook (Moshi uses 8 of Mimi's 32).
"""

from __future__ import annotations

import torch
# PreTrainedModel is bound here so diffusers can find this class's loading method (see NS2Pipeline).
from transformers import MimiConfig, MimiModel, PreTrainedModel  # noqa: F401

from .latent_codec import NS2TransformersCodecConfig, NS2TransformersCodecModel


class NS2MimiCodecConfig(NS2TransformersCodecConfig):
    r"""[`NS2TransformersCodecConfig`] of a `MimiModel`: hop = `frame_size`, latent dim = `hidden_size` (512),
    codebooks = the semantic one then the acoustic ones."""

    model_type = "ns2_mimi_codec"
    sub_configs_defaults = {"codec_config": MimiConfig}

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.num_quantizers < self.codec_config.num_semantic_quantizers:
            raise ValueError(f"Mimi needs its {self.codec_config.num_semantic_quantizers} semantic codebook(s): "
                             f"`num_quantizers` {self.num_quantizers} is fewer.")

    @property
    def hop_length(self) -> int:
        return int(self.codec_config.frame_size)

    @property
    def max_quantizers(self) -> int:
        return int(self.codec_config.num_quantizers)


class NS2MimiCodecModel(NS2TransformersCodecModel):
    """`MimiModel` as an NS2 latent space (see [`NS2TransformersCodecModel`])."""

    config_class = NS2MimiCodecConfig
    codec_class = MimiModel

    def _encode_codes(self, waveform: torch.Tensor) -> torch.LongTensor:
        return self.codec.encode(waveform, num_quantizers=self.config.num_quantizers).audio_codes

    def _codes_to_latents(self, audio_codes: torch.LongTensor) -> torch.Tensor:
        return self.codec.quantizer.decode(audio_codes)

    def _decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        return self.codec.decoder(latents).audio_values[:, 0]

    def _codebooks(self) -> torch.Tensor:
        quantizer = self.codec.quantizer
        codebooks = []
        for rvq in (quantizer.semantic_residual_vector_quantizer, quantizer.acoustic_residual_vector_quantizer):
            for layer in rvq.layers:
                vectors = layer.codebook.embed  # (K, d)
                if rvq.output_proj is not None:  # a 1x1 convolution: codebook (K, d) as a (1, d, K) sequence
                    vectors = rvq.output_proj(vectors.t()[None])[0].t()
                codebooks.append(vectors)
        return torch.stack(codebooks[: self.config.num_quantizers])


__all__ = ["NS2MimiCodecConfig", "NS2MimiCodecModel"]
