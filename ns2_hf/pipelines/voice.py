"""`NS2Voice`: a speech prompt encoded once, saved as safetensors and passed back to the pipeline.

`NS2Pipeline.encode_voice(audio)` loads, trims and checks a prompt and runs the codec encoder on it;
the result holds the prompt's quantized codec latents. A service clones a voice once
(`voice.save("alice.safetensors")`) and speaks with it any number of times
(`pipe(text, voice=NS2Voice.load("alice.safetensors"))`) without touching the audio again.
The file is plain safetensors (tensors and string metadata): loading it runs no code.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Optional, Union

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

#: `format` entry of a voice file's metadata.
VOICE_FORMAT = "ns2-voice"
#: Relative tolerance of the codebook probe: bf16/fp16 weights stay within it, another codec does not.
CODEBOOK_PROBE_RTOL = 1e-2
#: Tensors every voice file holds (`long_term_spectrum` is optional: voices saved before it was recorded lack it).
REQUIRED_TENSORS = frozenset({"prompt_latents", "codebook_probe"})


class VoiceError(ValueError):
    """Raised for a voice the pipeline cannot use: not a voice file, malformed, or encoded by another codec."""


def codebook_probe(codec) -> torch.Tensor:
    """The first vector of each RVQ codebook, `(num_quantizers, latent_dim)` float32 on the CPU: a voice's tie to
    the codec whose quantizer made its latents (unchanged by decoder fine-tuning, which keeps the codes; equal
    up to rounding across dtypes)."""
    return codec.get_codebooks()[:, 0].detach().float().cpu()


@dataclass
class NS2Voice:
    """A speech prompt in the codec's latent space.

    Args:
        prompt_latents: `(latent_dim, frames)` float32, the prompt's quantized codec latents (raw, not
            normalised by the model's `latent_scale`).
        sampling_rate: the codec's sampling rate.
        hop_length: the codec's samples per latent frame.
        codebook_probe: `(num_quantizers, latent_dim)`, :func:`codebook_probe` of the codec that encoded the prompt.
        log_f0_mean, log_f0_std: mean and standard deviation of the prompt's log-f0 (natural log of Hz) over its
            voiced frames (`ns2_hf.ns2.prompt_pitch.prompt_pitch_statistics` of the Praat track), which a model with
            prompt-anchored pitch de-normalises its pitch with; None for a prompt without voiced frames and for
            voices saved before they were recorded.
        long_term_spectrum: `(num_bands,)` float32, the prompt's long-term average spectrum in dB
            (`ns2_hf.audio.spectrum.long_term_spectrum`), which `NS2Pipeline(spectrum_matching=)` equalises the
            output towards; None for voices saved before voices recorded it.
    """

    prompt_latents: torch.Tensor
    sampling_rate: int
    hop_length: int
    codebook_probe: torch.Tensor
    log_f0_mean: Optional[float] = None
    log_f0_std: Optional[float] = None
    long_term_spectrum: Optional[torch.Tensor] = None

    def __post_init__(self):
        latents = self.prompt_latents
        if not isinstance(latents, torch.Tensor) or latents.ndim != 2 or latents.shape[1] == 0:
            shape = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
            raise VoiceError(f"prompt_latents must be a (latent_dim, frames) tensor with frames > 0, got {shape}.")
        if not latents.is_floating_point() or not torch.isfinite(latents).all():
            raise VoiceError("prompt_latents must hold finite floating-point values.")
        if self.sampling_rate <= 0 or self.hop_length <= 0:
            raise VoiceError(f"bad voice metadata: sampling_rate={self.sampling_rate}, hop_length={self.hop_length}.")
        if not isinstance(self.codebook_probe, torch.Tensor) or self.codebook_probe.ndim != 2:
            raise VoiceError("codebook_probe must be a (num_quantizers, latent_dim) tensor.")
        if (self.log_f0_mean is None) != (self.log_f0_std is None):
            raise VoiceError("give both log_f0_mean and log_f0_std, or neither.")
        if self.log_f0_mean is not None and not (math.isfinite(self.log_f0_mean) and self.log_f0_std > 0):
            raise VoiceError(f"bad pitch statistics: log_f0_mean={self.log_f0_mean}, log_f0_std={self.log_f0_std}.")
        spectrum = self.long_term_spectrum
        if spectrum is not None:
            if not isinstance(spectrum, torch.Tensor) or spectrum.ndim != 1 or spectrum.shape[0] < 2:
                raise VoiceError("long_term_spectrum must be a (num_bands,) tensor with at least 2 bands.")
            if not torch.isfinite(spectrum).all():
                raise VoiceError("long_term_spectrum must hold finite values.")
            self.long_term_spectrum = spectrum.detach().float().cpu()
        self.prompt_latents = latents.detach().float().cpu()
        self.codebook_probe = self.codebook_probe.detach().float().cpu()

    @property
    def seconds(self) -> float:
        """Length of the encoded prompt in seconds."""
        return self.prompt_latents.shape[1] * self.hop_length / self.sampling_rate

    def check_codec(self, codec) -> None:
        """Raise [`VoiceError`] unless `codec` (an `NS2CodecModel` or an `ns2_hf.latent_codecs` adapter) is the kind
        of codec that encoded this voice."""
        config = codec.config
        expected = (int(config.latent_dim), int(config.sampling_rate), int(config.hop_length))
        found = (self.prompt_latents.shape[0], self.sampling_rate, self.hop_length)
        if found != expected:
            raise VoiceError(
                f"the voice was encoded by a codec with (latent_dim, sampling_rate, hop_length) = {found}; this "
                f"pipeline's codec has {expected}. Encode the prompt again with this pipeline's `encode_voice`."
            )
        probe = codebook_probe(codec)
        tolerance = CODEBOOK_PROBE_RTOL * float(probe.abs().max())
        if probe.shape != self.codebook_probe.shape or not torch.allclose(probe, self.codebook_probe, atol=tolerance, rtol=0):
            raise VoiceError(
                "the voice was encoded by another codec (its codebooks differ from this pipeline's). Encode the "
                "prompt again with this pipeline's `encode_voice`."
            )

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write the voice to a `.safetensors` file."""
        metadata = {"format": VOICE_FORMAT, "sampling_rate": str(self.sampling_rate), "hop_length": str(self.hop_length)}
        if self.log_f0_mean is not None:
            metadata.update(log_f0_mean=repr(float(self.log_f0_mean)), log_f0_std=repr(float(self.log_f0_std)))
        tensors = {"prompt_latents": self.prompt_latents.contiguous(), "codebook_probe": self.codebook_probe.contiguous()}
        if self.long_term_spectrum is not None:
            tensors["long_term_spectrum"] = self.long_term_spectrum.contiguous()
        save_file(tensors, os.fspath(path), metadata=metadata)

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "NS2Voice":
        """Read a voice written by :meth:`save`.

        Raises:
            VoiceError: the file is missing, not safetensors, or not a voice file.
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise VoiceError(f"no such voice file: {path}")
        try:
            with safe_open(path, framework="pt") as handle:
                metadata = handle.metadata() or {}
                keys = set(handle.keys())
                if metadata.get("format") != VOICE_FORMAT or not REQUIRED_TENSORS <= keys <= REQUIRED_TENSORS | {"long_term_spectrum"}:
                    raise VoiceError(f"{path} is not a voice file written by NS2Voice.save.")
                prompt_latents, probe = handle.get_tensor("prompt_latents"), handle.get_tensor("codebook_probe")
                spectrum = handle.get_tensor("long_term_spectrum") if "long_term_spectrum" in keys else None
        except SafetensorError as error:
            raise VoiceError(f"{path} is not a readable safetensors file: {error}") from error
        try:
            return cls(
                prompt_latents=prompt_latents,
                sampling_rate=int(metadata["sampling_rate"]),
                hop_length=int(metadata["hop_length"]),
                codebook_probe=probe,
                log_f0_mean=float(metadata["log_f0_mean"]) if "log_f0_mean" in metadata else None,
                log_f0_std=float(metadata["log_f0_std"]) if "log_f0_std" in metadata else None,
                long_term_spectrum=spectrum,
            )
        except (KeyError, ValueError) as error:
            if isinstance(error, VoiceError):
                raise
            raise VoiceError(f"{path} has malformed voice metadata: {error!r}") from error
