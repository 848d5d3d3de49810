"""Feature extractor of the NaturalSpeech 2 codec: validates mono waveforms and pads them into a batch."""

from __future__ import annotations

import numpy as np
# FeatureExtractionMixin is bound here so diffusers can find this class's loading method (see NS2Pipeline).
from transformers import BatchFeature, FeatureExtractionMixin, SequenceFeatureExtractor  # noqa: F401
from transformers.utils import logging

from ..audio.io import AudioInputError, check_waveform
from .configuration_codec import NS2CodecConfig

logger = logging.get_logger(__name__)


class NS2CodecFeatureExtractor(SequenceFeatureExtractor):
    r"""
    Turns one or several mono waveforms into the `input_values` / `padding_mask` of [`NS2CodecModel`].

    No silent downmix or resampling happens here: audio at another rate, multi-channel, empty or non-finite audio
    raises [`~ns2_hf.audio.AudioInputError`]. Convert first with `ns2_hf.audio.load_audio(x, sampling_rate=...,
    target_sampling_rate=extractor.sampling_rate)`, which downmixes and resamples.

    Args:
        feature_size (`int`, defaults to 1): channels per sample (mono).
        sampling_rate (`int`, *optional*): rate the codec expects; defaults to [`NS2CodecConfig`]'s.
        padding_value (`float`, defaults to 0.0): value of padded samples.
    """

    model_input_names = ["input_values", "padding_mask"]

    def __init__(self, feature_size: int = 1, sampling_rate: int | None = None, padding_value: float = 0.0, **kwargs):
        if sampling_rate is None:
            sampling_rate = NS2CodecConfig().sampling_rate
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)

    @classmethod
    def from_codec_config(cls, config: NS2CodecConfig) -> "NS2CodecFeatureExtractor":
        """The feature extractor matching a codec config's sampling rate."""
        return cls(sampling_rate=config.sampling_rate)

    def __call__(
        self,
        raw_audio,
        sampling_rate: int | None = None,
        padding: bool | str = True,
        return_tensors: str | None = "pt",
    ) -> BatchFeature:
        """
        Args:
            raw_audio: one waveform (`np.ndarray`/tensor of shape `(samples,)` or a list of floats) or a list of
                waveforms.
            sampling_rate: the rate of `raw_audio`; must equal `self.sampling_rate`. Strongly recommended (a
                warning is logged when missing, since a wrong rate cannot be detected).
            padding: `True`/`"longest"` pads to the longest waveform; `False` needs equal lengths for tensors.
            return_tensors: `"pt"`, `"np"` or None (lists).

        Returns:
            BatchFeature with `input_values` `(batch, samples)` float32 and `padding_mask` `(batch, samples)` bool
            (True = real sample).

        Raises:
            AudioInputError: naming the problem (wrong rate, multi-channel, empty, NaN/inf, no audio).
        """
        if sampling_rate is None:
            logger.warning(
                f"`sampling_rate` was not passed to {self.__class__.__name__}; assuming {self.sampling_rate} Hz. "
                "Pass it so that audio at another rate raises instead of producing garbage."
            )
        if isinstance(raw_audio, (list, tuple)) and len(raw_audio) == 0:
            raise AudioInputError("raw_audio is empty (no waveform given).")
        is_batched = isinstance(raw_audio, (list, tuple)) and not np.isscalar(raw_audio[0])
        waveforms = list(raw_audio) if is_batched else [raw_audio]
        validated = []
        for index, waveform in enumerate(waveforms):
            if hasattr(waveform, "detach"):
                waveform = waveform.detach().cpu().numpy()
            name = f"raw_audio[{index}]" if is_batched else "raw_audio"
            validated.append(check_waveform(np.asarray(waveform), sampling_rate, self.sampling_rate, name=name))

        padded = self.pad(
            BatchFeature({"input_values": validated}),
            padding=padding,
            return_attention_mask=True,
            return_tensors=return_tensors,
        )
        padding_mask = padded.pop("attention_mask")
        padded["padding_mask"] = padding_mask.bool() if return_tensors == "pt" else np.asarray(padding_mask, bool)
        return padded


__all__ = ["NS2CodecFeatureExtractor"]
