"""The NaturalSpeech 2 training losses, one masked function per term.

Every function averages over valid positions only (masks are bool, True = valid), over the
whole batch: padding never contributes to a loss or its gradient.
"""

import torch
import torch.nn.functional as F


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `values (batch, ..., T)` over positions where `mask (batch, T)` is True."""
    mask = mask.to(values.dtype)
    while mask.dim() < values.dim():
        mask = mask.unsqueeze(1)
    mask = mask.expand_as(values)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def data_loss(predicted_latents: torch.Tensor, latents: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """Masked MSE ‖ẑ₀ − z₀‖² between `(batch, D, F)` latents, averaged over valid frames and channels."""
    return _masked_mean((predicted_latents - latents) ** 2, frame_mask)


def score_loss(
    predicted_noise: torch.Tensor,
    noise: torch.Tensor,
    snr: torch.Tensor,
    frame_mask: torch.Tensor,
    snr_clamp: float,
) -> torch.Tensor:
    """The score implied by ẑ₀ against the true score, in noise space, with Min-SNR weighting.

    The score of z_t given z₀ is −ε/σ; the prediction implies ε̂ = (z_t − α ẑ₀)/σ (the
    scheduler's `noise_from_data_prediction`), so ε̂ − ε = (α/σ)(z₀ − ẑ₀) and the raw error is
    SNR-times the data error (SNR = α²/σ²), which explodes as t → 0. Each item's error is weighted
    by min(SNR, snr_clamp) / SNR, which leaves noisy steps untouched and caps the weight of clean
    ones (Hang et al. 2023, "Min-SNR").

    Args:
        predicted_noise: `(batch, D, F)` ε̂ implied by ẑ₀.
        noise: `(batch, D, F)` ε.
        snr: `(batch,)` α²/σ² at each item's t (the scheduler's `snr`).
        frame_mask: `(batch, F)` bool.
        snr_clamp: γ of the weighting.
    """
    snr = snr.view(-1, 1, 1).to(predicted_noise.dtype)
    weight = snr.clamp(max=snr_clamp) / snr
    return _masked_mean(weight * (predicted_noise - noise) ** 2, frame_mask)


def ce_rvq_loss(
    predicted_latents: torch.Tensor, codes: torch.Tensor, codebooks: torch.Tensor, frame_mask: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy of the residual VQ codes given ẑ₀ (latents and codebooks in one space).

    For quantizer j the residual ẑ₀ − Σ_{i<j} e_i (e_i: the true codebook vectors of the
    earlier quantizers) is scored against every vector of codebook j by −‖residual − c_k‖²,
    and the softmax over k is compared with the true code j.

    Args:
        predicted_latents: `(batch, D, F)` ẑ₀, in the same space as `codebooks` (NS2Model uses the
            normalised space: both multiplied by `latent_scale`).
        codes: `(batch, n_q, F)` long, the true codes.
        codebooks: `(n_q, K, D)` the codec's codebooks.
        frame_mask: `(batch, F)` bool.

    Returns:
        Cross-entropy averaged over quantizers and valid frames.
    """
    num_quantizers = codebooks.shape[0]
    # e[b, j, f] = codebooks[j, codes[b, j, f]]: (batch, n_q, F, D)
    true_vectors = codebooks[torch.arange(num_quantizers, device=codes.device).view(1, -1, 1), codes]
    earlier_sum = true_vectors.cumsum(dim=1) - true_vectors
    residuals = predicted_latents.transpose(1, 2).unsqueeze(1) - earlier_sum
    # squared distances (batch, n_q, F, K) = ‖r‖² − 2 r·c + ‖c‖²
    distances = (
        residuals.pow(2).sum(-1, keepdim=True)
        - 2 * torch.einsum("bqfd,qkd->bqfk", residuals, codebooks)
        + codebooks.pow(2).sum(-1).view(1, num_quantizers, 1, -1)
    )
    cross_entropy = F.cross_entropy(-distances.permute(0, 3, 1, 2), codes, reduction="none")
    return _masked_mean(cross_entropy, frame_mask)


def duration_loss(
    predicted_log_durations: torch.Tensor, durations: torch.Tensor, phoneme_mask: torch.Tensor
) -> torch.Tensor:
    """Masked L1 between predicted log(d+1) and the true log(d+1); `(batch, L)` each."""
    target = torch.log1p(durations.to(predicted_log_durations.dtype))
    return _masked_mean((predicted_log_durations - target).abs(), phoneme_mask)


def pitch_loss(predicted_log_f0: torch.Tensor, log_f0: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """Masked L1 between predicted and true frame log-f0 `(batch, F)` over the frames `frame_mask` marks:
    every valid frame in the paper's setting (the data's convention for unvoiced frames is then what the
    predictor learns), valid voiced frames only with prompt-anchored pitch (`NS2Model` passes that mask)."""
    return _masked_mean((predicted_log_f0 - log_f0).abs(), frame_mask)
