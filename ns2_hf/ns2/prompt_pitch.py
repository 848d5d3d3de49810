"""Prompt-anchored pitch (ours, a departure from the paper): log-f0 relative to the prompt's own statistics.

The paper's pitch predictor regresses absolute log-f0 and must read the voice's range from the
prompt through attention. Trained on a few speakers, ours did not: the shipped model put its output
near 83 Hz whatever the real prompt (99–186 Hz), and across unseen synthetic voices the output's mean
f0 did not correlate with the prompt's (r = −0.08; issue 13). With `NS2Config.pitch_normalization =
"prompt"` the predictor instead regresses

    (log_f0 − μ_prompt) / σ_prompt

where μ and σ are the mean and standard deviation of the prompt's log-f0 over its *voiced* frames
(the same Praat tracker, `ns2_hf.audio.pitch.extract_pitch`, measures training data and inference
prompts), and inference de-normalises with the prompt's μ and σ: the output's pitch lives in the
prompt's range by construction, and the predictor only learns the contour's shape. The pitch loss
then counts voiced frames only (unvoiced log-f0 is interpolated by the extractor, not measured).
"""

from typing import Optional, Tuple

import torch

#: Values of `NS2Config.pitch_normalization`: None (the paper's absolute log-f0) or "prompt".
PITCH_NORMALIZATIONS = (None, "prompt")
#: Floor of σ in natural-log units (0.05 ≈ 0.9 semitone): a prompt held on one note would otherwise
#: blow up the normalised target (ours).
MIN_LOG_F0_STD = 0.05


def prompt_pitch_statistics(
    prompt_log_f0: torch.Tensor, prompt_voiced: torch.Tensor, prompt_mask: Optional[torch.Tensor] = None
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of each prompt's log-f0 over its voiced frames.

    Args:
        prompt_log_f0: `(batch, P)` natural log of f0 in Hz per prompt frame.
        prompt_voiced: `(batch, P)` bool, True on voiced frames.
        prompt_mask: `(batch, P)` bool, True on valid frames (default: all valid).

    Returns:
        `mean (batch,)` and `std (batch,)` (population std, at least `MIN_LOG_F0_STD`). An item with no
        voiced valid frame uses all its valid frames (during training a short prompt cut can fall in a
        pause; the extractor's interpolated values there hold the neighbouring pitch).
    """
    if prompt_mask is None:
        prompt_mask = torch.ones_like(prompt_voiced, dtype=torch.bool)
    counted = prompt_voiced.bool() & prompt_mask.bool()
    no_voiced = ~counted.any(dim=1, keepdim=True)
    counted = torch.where(no_voiced, prompt_mask.bool(), counted).to(prompt_log_f0.dtype)
    count = counted.sum(dim=1).clamp(min=1.0)
    mean = (prompt_log_f0 * counted).sum(dim=1) / count
    variance = (((prompt_log_f0 - mean[:, None]) ** 2) * counted).sum(dim=1) / count
    return mean, variance.sqrt().clamp(min=MIN_LOG_F0_STD)


def normalize_log_f0(log_f0: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """`log_f0 (batch, F)` → `(log_f0 − mean) / std` with per-item `mean, std (batch,)`."""
    return (log_f0 - mean[:, None]) / std[:, None]


def denormalize_log_f0(normalized: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`normalize_log_f0`: `normalized (batch, F)` → `mean + std · normalized`."""
    return mean[:, None] + std[:, None] * normalized
