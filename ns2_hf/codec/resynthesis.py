"""A recording through the codec and back, optionally with the harmonic phase at the recording's own pitch.

What the codec evaluation (`training/evaluate_tts.py --codec`), the phase ablation benchmark and the shipped-model
tests score: with `harmonic_phase`, the pitch comes from the recording (Praat at the codec hop,
`ns2_hf.audio.pitch.extract_pitch`), as the pipeline's comes from the pitch it conditioned on.
"""

from __future__ import annotations

import numpy as np
import torch

from .modeling_codec import NS2CodecModel


@torch.no_grad()
def resynthesize(codec: NS2CodecModel, waveform: np.ndarray, harmonic_phase: bool = False, quantized: bool = True) -> np.ndarray:
    """`(samples,)` mono float32 waveform at the codec's rate -> its resynthesis `(samples,)`: encoded, quantized
    with every quantizer and decoded; with `harmonic_phase` (Fourier decoder), voiced frames take the phase of a
    harmonic excitation at the recording's own pitch (`NS2CodecModel.decode(f0=, voiced=)`). `quantized=False`
    decodes the encoder's continuous latents instead, bypassing the RVQ (what the quantizer costs)."""
    audio = torch.from_numpy(np.asarray(waveform, dtype=np.float32))[None]
    if not harmonic_phase and quantized:
        return codec(audio).audio_values[0].numpy()
    encoded = codec.encode(audio)
    latents = encoded.quantized_latents if quantized else encoded.latents
    if not harmonic_phase:
        return codec.decode(latents).audio_values[0, : len(waveform)].numpy()
    from ..audio.pitch import extract_pitch  # Praat: imported when used (the codec loads without it)

    log_f0, voiced = extract_pitch(waveform, codec.config.sampling_rate, codec.config.hop_length, num_frames=latents.shape[-1])
    decoded = codec.decode(latents, f0=torch.from_numpy(log_f0).exp()[None], voiced=torch.from_numpy(voiced)[None])
    return decoded.audio_values[0, : len(waveform)].numpy()
