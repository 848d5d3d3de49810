"""Monotonic alignment search (MAS), as in Glow-TTS and RAD-TTS.

Given log-probabilities `log_probs[t, j]` that mel frame `t` belongs to text token `j`, MAS finds
the monotonic path that maximises the summed log-probability, where the path starts at
`(0, 0)`, ends at `(F - 1, L - 1)` and each frame either stays on the previous frame's token or
moves to the next one. Every token therefore gets at least one frame and the durations (frames
per token) sum exactly to `F`.

Dynamic programme (one step per frame, vectorised over the text axis):

    Q[0, 0] = log_probs[0, 0],   Q[0, j > 0] = -inf
    Q[t, j] = log_probs[t, j] + max(Q[t - 1, j], Q[t - 1, j - 1])

then backtracking from `(F - 1, L - 1)`: at frame `t` on token `j`, step back to token `j - 1`
when `Q[t - 1, j - 1] >= Q[t - 1, j]` (on a tie the current token starts later).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch


class AlignmentError(ValueError):
    """Raised when no monotonic alignment exists (fewer frames than tokens) or inputs are malformed."""


def maximum_path(log_probs: np.ndarray) -> np.ndarray:
    """Token index of every frame on the best monotonic path of one utterance.

    Args:
        log_probs: `(frames, tokens)` array of log-probabilities (any finite scores work).

    Returns:
        `(frames,)` int64 array: the token each frame is assigned to (non-decreasing, starts at 0,
        ends at `tokens - 1`, steps of 0 or 1).

    Raises:
        AlignmentError: if `frames < tokens`, either is zero, or the input is not 2-D.
    """
    log_probs = np.asarray(log_probs, dtype=np.float64)
    if log_probs.ndim != 2:
        raise AlignmentError(f"log_probs must have shape (frames, tokens), got {log_probs.shape}.")
    num_frames, num_tokens = log_probs.shape
    if num_tokens == 0 or num_frames == 0:
        raise AlignmentError(f"cannot align {num_tokens} tokens to {num_frames} frames.")
    if num_frames < num_tokens:
        raise AlignmentError(
            f"cannot align {num_tokens} tokens to only {num_frames} frames: every token needs at least "
            "one frame (the audio is too short for the text, or the frame mask is wrong)."
        )
    best = np.full((num_frames, num_tokens), -np.inf)
    best[0, 0] = log_probs[0, 0]
    for t in range(1, num_frames):
        from_previous_token = np.concatenate(([-np.inf], best[t - 1, :-1]))
        best[t] = log_probs[t] + np.maximum(best[t - 1], from_previous_token)

    path = np.empty(num_frames, dtype=np.int64)
    token = num_tokens - 1
    for t in range(num_frames - 1, -1, -1):
        path[t] = token
        if t > 0 and token > 0 and best[t - 1, token - 1] >= best[t - 1, token]:
            token -= 1
    return path


def monotonic_alignment_search(
    log_probs: torch.Tensor,
    token_mask: Optional[torch.Tensor] = None,
    frame_mask: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Hard monotonic alignment of a padded batch.

    Args:
        log_probs: `(batch, frames, tokens)` frame-to-token log-probabilities.
        token_mask: `(batch, tokens)` bool, True on real tokens (default: all).
        frame_mask: `(batch, frames)` bool, True on real frames (default: all).

    Returns:
        `(batch, frames, tokens)` float 0/1 alignment on `log_probs`' device: exactly one 1 per
        valid frame, zeros on padding.

    Raises:
        AlignmentError: naming the batch item whose frame count is below its token count.
    """
    batch, num_frames, num_tokens = log_probs.shape
    if token_mask is None:
        token_mask = torch.ones(batch, num_tokens, dtype=torch.bool, device=log_probs.device)
    if frame_mask is None:
        frame_mask = torch.ones(batch, num_frames, dtype=torch.bool, device=log_probs.device)
    token_lengths = token_mask.sum(dim=1).tolist()
    frame_lengths = frame_mask.sum(dim=1).tolist()
    scores = log_probs.detach().float().cpu().numpy()
    alignment = np.zeros((batch, num_frames, num_tokens), dtype=np.float32)
    for item, (frames, tokens) in enumerate(zip(frame_lengths, token_lengths)):
        try:
            path = maximum_path(scores[item, :frames, :tokens])
        except AlignmentError as error:
            raise AlignmentError(f"batch item {item}: {error}") from None
        alignment[item, np.arange(frames), path] = 1.0
    return torch.from_numpy(alignment).to(log_probs.device)


def durations_from_alignment(alignment: torch.Tensor) -> torch.Tensor:
    """Frames per token, `(batch, tokens)` long, from a `(batch, frames, tokens)` hard alignment."""
    return alignment.sum(dim=1).round().long()
