"""The latent space NaturalSpeech 2 diffuses in, and the base of the adapters that make a transformers codec one.

NS2 (paper section 3.1) needs six things from its codec, and nothing else:

- `config.sampling_rate`, `config.hop_length` (audio samples per latent frame), `config.frame_rate`,
  `config.latent_dim` (D), `config.num_quantizers` (n_q), `config.codebook_size` (K) and `config.latent_space()`
  (the fields two codecs must share for an NS2 model trained on one to run on the other);
- `encode(input_values (batch, samples), padding_mask=None)` returning `audio_codes (batch, n_q, frames)`,
  `quantized_latents (batch, D, frames)` and `latent_mask (batch, frames)`, with `frames = ceil(samples / hop)`;
- `codes_to_latents(audio_codes (batch, k, frames))` → `(batch, D, frames)`: the sum of the quantized vectors
  that the first k codebooks select — the continuous latent the diffusion model generates;
- `decode(quantized_latents=... | audio_codes=...)` → `audio_values (batch, frames * hop)`;
- `get_codebooks()` → `(n_q, K, D)`: the vector code k of quantizer j adds to the latent, so that
  `codes_to_latents(codes) == sum_j get_codebooks()[j, codes[:, j]]` — what the CE-RVQ loss scores residuals
  against.

[`~ns2_hf.codec.NS2CodecModel`] has all of it natively (its codebooks live in the latent space). The adapters here
give it to transformers' own codecs without copying them: [`NS2TransformersCodecModel`] holds the transformers
model as `self.codec` and does the framing, padding and checks once; a subclass (`dac.py`, `encodec.py`, `mimi.py`)
only says how its codec encodes to codes, turns codes into latents, decodes latents and projects its codebooks into
the latent space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput


class NS2LatentCodec(Protocol):
    """What NS2 training and the pipeline use of a codec (see the module docstring for shapes)."""

    config: PreTrainedConfig

    def encode(self, input_values: torch.Tensor, padding_mask: torch.Tensor | None = None): ...

    def codes_to_latents(self, audio_codes: torch.LongTensor) -> torch.Tensor: ...

    def decode(self, quantized_latents: torch.Tensor | None = None, audio_codes: torch.LongTensor | None = None): ...

    def get_codebooks(self) -> torch.Tensor:
        """`(num_quantizers, codebook_size, latent_dim)`: the vector code k of quantizer j adds to the latent (what
        CE-RVQ scores residuals against); `codes_to_latents(codes) == sum_j get_codebooks()[j, codes[:, j]]`."""
        ...


def codec_latent_space(codec: NS2LatentCodec) -> dict:
    """The record of a codec's latent space an NS2 model keeps (`NS2Config.codec_latent_space`): its config's
    `model_type` and `latent_space()` fields."""
    return {"model_type": codec.config.model_type, **codec.config.latent_space()}


def check_codec_latent_space(trained_with: dict | None, codec: NS2LatentCodec) -> None:
    """Raise `ValueError` unless `codec` has the latent space recorded in `trained_with` (an NS2 model's
    `config.codec_latent_space`; None for models saved before it was recorded, which are not checked)."""
    if trained_with is None:
        return
    found = codec_latent_space(codec)
    differing = sorted(key for key in trained_with.keys() | found.keys() if trained_with.get(key) != found.get(key))
    if differing:
        expected = {key: trained_with.get(key) for key in differing}
        given = {key: found.get(key) for key in differing}
        raise ValueError(
            f"the NS2 model was trained on the latent space of a {trained_with.get('model_type')} codec and the "
            f"pipeline's codec is a {found['model_type']} whose {', '.join(differing)} differ ({expected} vs {given}): "
            "its latents would mean nothing to the model. Use the codec the model was trained on, or train NS2 on "
            "codes of this one."
        )


@dataclass
class NS2LatentCodecEncoderOutput(ModelOutput):
    """
    Args:
        audio_codes (`torch.LongTensor` of shape `(batch, num_quantizers, frames)`):
            Code of each quantizer per frame (zero in padded frames).
        quantized_latents (`torch.Tensor` of shape `(batch, latent_dim, frames)`):
            Sum of the quantized vectors the codes select (zero in padded frames): the diffusion's data space.
        latent_mask (`torch.BoolTensor` of shape `(batch, frames)`):
            True for frames holding at least one valid input sample.
    """

    audio_codes: torch.LongTensor | None = None
    quantized_latents: torch.Tensor | None = None
    latent_mask: torch.BoolTensor | None = None


@dataclass
class NS2LatentCodecDecoderOutput(ModelOutput):
    """
    Args:
        audio_values (`torch.Tensor` of shape `(batch, frames * hop_length)`):
            Decoded waveform (zero after the valid frames when a `latent_mask` is given).
    """

    audio_values: torch.Tensor | None = None


class NS2TransformersCodecConfig(PreTrainedConfig):
    r"""
    Base configuration of an adapter that makes a transformers audio codec an NS2 latent space. A subclass names
    the codec's config class in `sub_configs_defaults = {"codec_config": ...}` and reads the properties below
    from it.

    Args:
        codec_config (`PreTrainedConfig` or `dict`, *optional*):
            The wrapped codec's configuration (a dict is turned into the subclass's codec config class).
        num_quantizers (`int`, *optional*):
            The first `num_quantizers` codebooks make the latent (the sum of their quantized vectors) and the codes
            NS2 is trained on; default all of the codec's. Fewer codebooks give a coarser latent.
        source (`str`, *optional*):
            Where the codec's weights came from (a Hub id or folder), set by `from_codec`; part of
            `latent_space()`, so an NS2 model trained on one checkpoint refuses another of the same shape.
    """

    codec_config: dict | PreTrainedConfig | None = None
    num_quantizers: int | None = None
    source: str | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)  # turns `codec_config` into its config class
        if self.num_quantizers is None:
            self.num_quantizers = self.max_quantizers
        if not 1 <= self.num_quantizers <= self.max_quantizers:
            raise ValueError(f"`num_quantizers` must be in [1, {self.max_quantizers}] for this codec, got "
                             f"{self.num_quantizers}.")
        if getattr(self.codec_config, "audio_channels", 1) != 1:
            raise ValueError("NS2 reads and writes mono audio: the codec must have `audio_channels=1`.")

    @property
    def sampling_rate(self) -> int:
        """Rate of the audio the codec reads and writes, in Hz."""
        return int(self.codec_config.sampling_rate)

    @property
    def hop_length(self) -> int:
        """Audio samples per latent frame."""
        raise NotImplementedError

    @property
    def latent_dim(self) -> int:
        """Channels D of the latent `(batch, D, frames)`."""
        return int(self.codec_config.hidden_size)

    @property
    def codebook_size(self) -> int:
        """Codes per codebook (K)."""
        return int(self.codec_config.codebook_size)

    @property
    def max_quantizers(self) -> int:
        """Codebooks the codec has."""
        raise NotImplementedError

    @property
    def frame_rate(self) -> float:
        """Latent frames per second: `sampling_rate / hop_length`."""
        return self.sampling_rate / self.hop_length

    def latent_space(self) -> dict:
        """The fields that fix the latent space: codecs with equal values (and weights) give the same latents."""
        return {"sampling_rate": self.sampling_rate, "hop_length": self.hop_length, "latent_dim": self.latent_dim,
                "num_quantizers": self.num_quantizers, "codebook_size": self.codebook_size, "source": self.source}


class NS2TransformersCodecModel(PreTrainedModel):
    """A transformers audio codec (`self.codec`) seen as an NS2 latent space (the interface in the module
    docstring). Frozen: NS2 never trains its codec.

    A subclass sets `config_class` and `codec_class` and implements `_encode_codes`, `_codes_to_latents`,
    `_decode_latents` and `_codebooks`. Audio enters as `(batch, samples)` at `config.sampling_rate`, is
    right-padded with zeros to a whole number of frames, and items of different lengths are encoded one at a time
    (these codecs have no padding mask, so a batch neighbour's length would change an item's last frames).
    """

    config_class = NS2TransformersCodecConfig
    codec_class: type[PreTrainedModel]
    main_input_name = "input_values"

    def __init__(self, config: NS2TransformersCodecConfig):
        super().__init__(config)
        self.codec = self.codec_class(config.codec_config)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """The wrapped codec initialises its own modules (it is a `PreTrainedModel`); the adapter has none."""

    @classmethod
    def from_codec(cls, codec: PreTrainedModel, num_quantizers: int | None = None, source: str | None = None):
        """Wrap a loaded transformers codec (e.g. `DacModel.from_pretrained("descript/dac_16khz")`), sharing its
        weights. `source` (default the codec's `name_or_path`) is recorded in the config."""
        config = cls.config_class(codec_config=codec.config, num_quantizers=num_quantizers,
                                  source=source or codec.config.name_or_path or None)
        with torch.device("meta"):  # the wrapped model is replaced below: no random weights to draw
            adapter = cls(config)
        adapter.codec = codec
        return adapter.to(codec.dtype).eval()

    # ---- what a subclass implements ----------------------------------------------------------------------------
    def _encode_codes(self, waveform: torch.Tensor) -> torch.LongTensor:
        """`(batch, 1, frames * hop)` audio → `(batch, num_quantizers, frames)` codes (at least `frames`)."""
        raise NotImplementedError

    def _codes_to_latents(self, audio_codes: torch.LongTensor) -> torch.Tensor:
        """`(batch, k, frames)` codes of the first k codebooks → `(batch, latent_dim, frames)`, by the codec's own
        dequantizer."""
        raise NotImplementedError

    def _decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """`(batch, latent_dim, frames)` → `(batch, samples)` audio (about `frames * hop` samples)."""
        raise NotImplementedError

    def _codebooks(self) -> torch.Tensor:
        """`(num_quantizers, codebook_size, latent_dim)`: the latent-space vector each code adds."""
        raise NotImplementedError

    # ---- the interface ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(
        self, input_values: torch.Tensor, padding_mask: torch.Tensor | None = None, return_dict: bool = True
    ) -> NS2LatentCodecEncoderOutput | tuple:
        """Encode audio to codes and quantized latents.

        Args:
            input_values: `(batch, samples)` or `(batch, 1, samples)` float audio at `config.sampling_rate`.
            padding_mask: `(batch, samples)` bool, True = real sample (right padding).
        """
        if input_values.dim() == 3 and input_values.shape[1] == 1:
            input_values = input_values[:, 0]
        if input_values.dim() != 2 or input_values.numel() == 0 or not input_values.is_floating_point():
            raise ValueError(f"`input_values` must be non-empty float (batch, samples) mono audio, got "
                             f"{input_values.dtype} of shape {tuple(input_values.shape)}.")
        batch, num_samples = input_values.shape
        if padding_mask is None:
            lengths = [num_samples] * batch
        elif padding_mask.shape != input_values.shape:
            raise ValueError(f"`padding_mask` must have the shape of `input_values` {tuple(input_values.shape)}, got "
                             f"{tuple(padding_mask.shape)}.")
        else:
            lengths = padding_mask.sum(dim=1).tolist()
        if min(lengths) == 0:
            raise ValueError("`padding_mask` marks every sample of some batch item as padding.")
        hop = self.config.hop_length
        frames = [math.ceil(length / hop) for length in lengths]
        waveform = input_values.to(self.dtype)
        if padding_mask is not None:
            waveform = waveform * padding_mask
        # one call for a batch of equal lengths, else one per item
        groups = [range(batch)] if len(set(frames)) == 1 else [range(index, index + 1) for index in range(batch)]
        audio_codes = torch.zeros(batch, self.config.num_quantizers, max(frames), dtype=torch.long,
                                  device=input_values.device)
        for items in groups:
            item_frames = frames[items[0]]
            item_audio = nn.functional.pad(waveform[items.start: items.stop, : lengths[items[0]]],
                                           (0, item_frames * hop - lengths[items[0]]))
            codes = self._encode_codes(item_audio[:, None])
            if codes.shape[-1] < item_frames:
                raise RuntimeError(f"{type(self.codec).__name__} gave {codes.shape[-1]} frames for "
                                   f"{item_frames * hop} samples; expected {item_frames}.")
            audio_codes[items.start: items.stop, :, :item_frames] = codes[..., :item_frames]
        latent_mask = torch.arange(max(frames), device=input_values.device)[None] < torch.tensor(
            frames, device=input_values.device)[:, None]
        quantized_latents = self.codes_to_latents(audio_codes) * latent_mask[:, None]
        output = NS2LatentCodecEncoderOutput(audio_codes, quantized_latents, latent_mask)
        return output if return_dict else output.to_tuple()

    @torch.no_grad()
    def get_codebooks(self) -> torch.Tensor:
        """`(num_quantizers, codebook_size, latent_dim)`: the vector code k of quantizer j adds to the latent (what
        CE-RVQ scores residuals against); `codes_to_latents(codes) == sum_j get_codebooks()[j, codes[:, j]]`."""
        return self._codebooks()

    @torch.no_grad()
    def codes_to_latents(self, audio_codes: torch.LongTensor) -> torch.Tensor:
        """`(batch, k, frames)` codes of the first k quantizers → `(batch, latent_dim, frames)` quantized latents."""
        if audio_codes.dim() != 3 or not 1 <= audio_codes.shape[1] <= self.config.num_quantizers:
            raise ValueError(f"`audio_codes` must be (batch, k <= {self.config.num_quantizers}, frames), got shape "
                             f"{tuple(audio_codes.shape)}.")
        if audio_codes.numel() and (audio_codes.min() < 0 or audio_codes.max() >= self.config.codebook_size):
            raise ValueError(f"`audio_codes` must be integers in [0, {self.config.codebook_size}).")
        return self._codes_to_latents(audio_codes.long())

    @torch.no_grad()
    def decode(
        self,
        quantized_latents: torch.Tensor | None = None,
        audio_codes: torch.LongTensor | None = None,
        latent_mask: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> NS2LatentCodecDecoderOutput | tuple:
        """Decode quantized latents (or codes) to audio of exactly `frames * hop_length` samples.

        Args:
            quantized_latents: `(batch, latent_dim, frames)`, e.g. generated by the diffusion model.
            audio_codes: `(batch, k, frames)` codes of the first k quantizers; pass this or `quantized_latents`.
            latent_mask: `(batch, frames)` bool, True = valid frame; the audio after an item's valid frames is
                zeroed. (The decoder sees the whole batch: decode items of different lengths one at a time for
                output that does not depend on the padding.)
        """
        if (quantized_latents is None) == (audio_codes is None):
            raise ValueError("Pass exactly one of `quantized_latents` and `audio_codes`.")
        if audio_codes is not None:
            quantized_latents = self.codes_to_latents(audio_codes)
        if quantized_latents.dim() != 3 or quantized_latents.shape[1] != self.config.latent_dim:
            raise ValueError(f"`quantized_latents` must be (batch, {self.config.latent_dim}, frames), got "
                             f"{tuple(quantized_latents.shape)}.")
        num_samples = quantized_latents.shape[-1] * self.config.hop_length
        audio = self._decode_latents(quantized_latents.to(self.dtype))[:, :num_samples]
        audio = nn.functional.pad(audio, (0, num_samples - audio.shape[-1]))
        if latent_mask is not None:
            audio = audio * latent_mask.repeat_interleave(self.config.hop_length, dim=1).to(audio.dtype)
        output = NS2LatentCodecDecoderOutput(audio_values=audio)
        return output if return_dict else output.to_tuple()


__all__ = [
    "NS2LatentCodec",
    "NS2LatentCodecDecoderOutput",
    "NS2LatentCodecEncoderOutput",
    "NS2TransformersCodecConfig",
    "NS2TransformersCodecModel",
    "check_codec_latent_space",
    "codec_latent_space",
]
