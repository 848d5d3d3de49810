"""Training losses of the NaturalSpeech 2 codec (SoundStream-style): multi-resolution mel reconstruction,
phase reconstruction (ours, after APNet), hinge adversarial losses (EnCodec / SoundStream), feature matching,
and SI-SNR for evaluation.

Discriminator outputs are lists with one entry per sub-discriminator: `logits[i]` is a tensor of any shape,
`feature_maps[i]` a list of that sub-discriminator's intermediate activations (see `discriminators.py`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..audio.mel import mel_spectrogram

# (n_fft, hop_length, n_mels) from 8 ms to 128 ms windows at 16 kHz
DEFAULT_MEL_RESOLUTIONS: tuple[tuple[int, int, int], ...] = (
    (2048, 512, 128),
    (1024, 256, 80),
    (512, 128, 64),
    (256, 64, 32),
    (128, 32, 16),
)


def multi_resolution_mel_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    sampling_rate: int,
    resolutions: Sequence[tuple[int, int, int]] = DEFAULT_MEL_RESOLUTIONS,
) -> torch.Tensor:
    """Mean over `resolutions` of the L1 distance between log-mel spectrograms.

    Args:
        pred, target: `(batch, samples)` waveforms of equal shape.
        sampling_rate: their sampling rate (the codec config's).
        resolutions: `(n_fft, hop_length, n_mels)` triples.

    Returns:
        Scalar loss (natural-log mel magnitudes, floored at 1e-5).
    """
    if pred.shape != target.shape:
        raise ValueError(f"`pred` {tuple(pred.shape)} and `target` {tuple(target.shape)} must have the same shape.")
    losses = [
        (
            mel_spectrogram(pred, sampling_rate, n_fft=n_fft, hop_length=hop, n_mels=n_mels)
            - mel_spectrogram(target, sampling_rate, n_fft=n_fft, hop_length=hop, n_mels=n_mels)
        ).abs().mean()
        for n_fft, hop, n_mels in resolutions
    ]
    return torch.stack(losses).mean()


def _unit(spectrum: torch.Tensor, eps: float) -> torch.Tensor:
    """Complex values scaled to (almost) unit modulus; smooth at 0, where the phase is undefined."""
    return spectrum * torch.rsqrt(spectrum.abs().square() + eps)


def phase_loss(
    pred: torch.Tensor, target: torch.Tensor, n_fft: int, hop_length: int, eps: float = 1e-6
) -> dict[str, torch.Tensor]:
    """Anti-wrapping phase losses between two waveforms' STFTs (after APNet, Ai & Ling 2023; ours for the codec):
    instantaneous phase (`ip`), group delay (the phase difference between neighbouring frequency bins, `gd`) and
    instantaneous frequency (between neighbouring frames, `iaf`: how far each partial's phase advances in a hop,
    which a decoder gets wrong when its frames restart the same phase pattern at the frame rate, the buzz).

    Each term is `1 - cos(Δ)` of the phase error Δ — 0 for equal phases, periodic in 2π like APNet's anti-wrapping
    function, smooth — averaged over bins weighted by the target's magnitude (the geometric mean of the two bins
    for `gd` and `iaf`), so that the harmonics count and the undefined phase of silent bins does not.

    Args:
        pred, target: `(batch, samples)` waveforms of equal shape (padding zero in both).
        n_fft, hop_length: the STFT (Hann window of `n_fft`).
        eps: smooths the normalisation of near-zero bins.

    Returns:
        `{"ip": scalar, "gd": scalar, "iaf": scalar}`.
    """
    if pred.shape != target.shape:
        raise ValueError(f"`pred` {tuple(pred.shape)} and `target` {tuple(target.shape)} must have the same shape.")
    window = torch.hann_window(n_fft, device=pred.device)
    predicted, reference = (
        torch.stft(audio.float(), n_fft, hop_length, window=window, return_complex=True) for audio in (pred, target)
    )  # (batch, bins, frames)
    magnitude = reference.abs().detach()

    def term(error: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:  # error: complex, angle = phase error
        return ((1.0 - _unit(error, eps).real) * weight).sum() / weight.sum().clamp(min=eps)

    predicted_unit, reference_unit = _unit(predicted, eps), _unit(reference, eps).detach()
    return {
        "ip": term(predicted_unit * reference_unit.conj(), magnitude),
        "gd": term(
            predicted_unit[:, 1:] * predicted_unit[:, :-1].conj() * (reference_unit[:, 1:] * reference_unit[:, :-1].conj()).conj(),
            (magnitude[:, 1:] * magnitude[:, :-1]).sqrt(),
        ),
        "iaf": term(
            predicted_unit[..., 1:] * predicted_unit[..., :-1].conj()
            * (reference_unit[..., 1:] * reference_unit[..., :-1].conj()).conj(),
            (magnitude[..., 1:] * magnitude[..., :-1]).sqrt(),
        ),
    }


def discriminator_loss(real_logits: Sequence[torch.Tensor], fake_logits: Sequence[torch.Tensor]) -> torch.Tensor:
    """Hinge loss of the discriminators: mean over sub-discriminators of
    `mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))`. Pass logits of *detached* generated audio."""
    losses = [
        torch.relu(1 - real).mean() + torch.relu(1 + fake).mean() for real, fake in zip(real_logits, fake_logits)
    ]
    return torch.stack(losses).mean()


def generator_adversarial_loss(fake_logits: Sequence[torch.Tensor]) -> torch.Tensor:
    """Hinge adversarial loss of the generator: mean over sub-discriminators of `mean(relu(1 - D(fake)))`."""
    return torch.stack([torch.relu(1 - fake).mean() for fake in fake_logits]).mean()


def feature_matching_loss(
    real_feature_maps: Sequence[Sequence[torch.Tensor]], fake_feature_maps: Sequence[Sequence[torch.Tensor]]
) -> torch.Tensor:
    """Mean over every sub-discriminator layer of L1(fake activation, detached real activation)."""
    losses = [
        (fake - real.detach()).abs().mean()
        for real_maps, fake_maps in zip(real_feature_maps, fake_feature_maps)
        for real, fake in zip(real_maps, fake_maps)
    ]
    return torch.stack(losses).mean()


def si_snr(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale-invariant signal-to-noise ratio in dB, per item.

    Args:
        pred, target: `(batch, samples)` (or `(samples,)`) waveforms.

    Returns:
        `(batch,)` (or scalar) SI-SNR; higher is better, a perfect copy up to gain gives a large value.
    """
    if pred.shape != target.shape:
        raise ValueError(f"`pred` {tuple(pred.shape)} and `target` {tuple(target.shape)} must have the same shape.")
    pred = pred - pred.mean(dim=-1, keepdim=True)
    target = target - target.mean(dim=-1, keepdim=True)
    scale = (pred * target).sum(dim=-1, keepdim=True) / (target.pow(2).sum(dim=-1, keepdim=True) + eps)
    projection = scale * target
    noise = pred - projection
    return 10 * torch.log10((projection.pow(2).sum(dim=-1) + eps) / (noise.pow(2).sum(dim=-1) + eps))


__all__ = [
    "DEFAULT_MEL_RESOLUTIONS",
    "discriminator_loss",
    "feature_matching_loss",
    "generator_adversarial_loss",
    "multi_resolution_mel_loss",
    "si_snr",
]
