"""Duration and pitch predictors, the length regulator and the pitch embedding.

The duration predictor and the pitch predictor are two instances of :class:`VariancePredictor`
(separate weights, kernel 3 and 5 in the paper): a stack of convs (ReLU + LayerNorm) with a
query-key-value attention to the prompt hidden after every `attention_every` convs. The paper
gives no residual connections; we add one around each conv and each attention (a plain stack of
30 convs does not train reliably).
"""

from typing import Tuple

import torch
from torch import nn

from .phoneme_encoder import MultiHeadAttention


class VariancePredictor(nn.Module):
    """Predicts one scalar per position (log(d+1) per phoneme, or log-f0 per frame) from a hidden
    sequence, attending to the speech prompt."""

    def __init__(
        self,
        hidden_size: int,
        num_layers: int,
        kernel_size: int,
        attention_every: int,
        num_heads: int,
        dropout: float,
    ):
        super().__init__()
        self.attention_every = attention_every
        self.convs = nn.ModuleList(
            nn.Conv1d(hidden_size, hidden_size, kernel_size, padding=kernel_size // 2) for _ in range(num_layers)
        )
        self.conv_norms = nn.ModuleList(nn.LayerNorm(hidden_size) for _ in range(num_layers))
        num_attentions = num_layers // attention_every
        self.attentions = nn.ModuleList(
            MultiHeadAttention(hidden_size, num_heads, dropout) for _ in range(num_attentions)
        )
        self.attention_norms = nn.ModuleList(nn.LayerNorm(hidden_size) for _ in range(num_attentions))
        self.dropout = nn.Dropout(dropout)
        self.output_proj = nn.Linear(hidden_size, 1)

    def forward(
        self,
        hidden: torch.Tensor,
        mask: torch.Tensor,
        prompt_hidden: torch.Tensor,
        prompt_mask: torch.Tensor,
    ) -> torch.Tensor:
        """
        Args:
            hidden: `(batch, T, H)` phoneme or frame hidden.
            mask: `(batch, T)` bool, True = valid.
            prompt_hidden: `(batch, P, H)` prompt encoder output.
            prompt_mask: `(batch, P)` bool.

        Returns:
            `(batch, T)` predictions, zero at padding.
        """
        value_mask = mask.unsqueeze(-1).to(hidden.dtype)
        hidden = hidden * value_mask
        for index, (conv, norm) in enumerate(zip(self.convs, self.conv_norms)):
            update = torch.relu(conv(hidden.transpose(1, 2))).transpose(1, 2)
            hidden = (hidden + self.dropout(norm(update))) * value_mask
            if (index + 1) % self.attention_every == 0:
                block = index // self.attention_every
                attended = self.attentions[block](self.attention_norms[block](hidden), prompt_hidden, prompt_mask)
                hidden = (hidden + self.dropout(attended)) * value_mask
        # the last projection in float32 whatever the model's dtype: a bf16 log-f0 near 5 moves by up to
        # 0.03, more than a pitch bin (and log-durations round to other frame counts)
        weight, bias = self.output_proj.weight.float(), self.output_proj.bias.float()
        return nn.functional.linear(hidden.float(), weight, bias).squeeze(-1) * mask


def length_regulate(hidden: torch.Tensor, durations: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Repeat each phoneme's hidden vector for its duration in frames.

    Args:
        hidden: `(batch, L, H)` phoneme hidden.
        durations: `(batch, L)` long, frames per phoneme (≥ 0; padded phonemes must be 0).

    Returns:
        `(frame_hidden (batch, F, H), frame_mask (batch, F))` with F = the largest total
        duration in the batch; frames past an item's total are zero and masked out.
    """
    if durations.shape != hidden.shape[:2]:
        raise ValueError(f"durations {tuple(durations.shape)} must match hidden (batch, L) {tuple(hidden.shape[:2])}")
    if durations.is_floating_point():
        raise ValueError("durations must be integer frame counts (a long tensor)")
    if (durations < 0).any():
        raise ValueError("durations must be non-negative")
    batch, num_phonemes, width = hidden.shape
    totals = durations.sum(dim=1)
    num_frames = int(totals.max()) if batch else 0
    ends = durations.cumsum(dim=1)
    frames = torch.arange(num_frames, device=hidden.device)
    # frame f belongs to the first phoneme whose end (cumulative duration) exceeds f
    phoneme_index = torch.searchsorted(ends, frames.expand(batch, num_frames).contiguous(), right=True)
    phoneme_index = phoneme_index.clamp(max=num_phonemes - 1)
    frame_mask = frames.unsqueeze(0) < totals.unsqueeze(1)
    frame_hidden = torch.gather(hidden, 1, phoneme_index.unsqueeze(-1).expand(-1, -1, width))
    return frame_hidden * frame_mask.unsqueeze(-1).to(hidden.dtype), frame_mask


class PitchEmbedding(nn.Module):
    """Frame log-f0 → a learned vector per pitch bin (FastSpeech 2 style quantized embedding).

    `pitch_bins` bins: bin 0 holds log-f0 ≤ `log_f0_min` (unvoiced frames, stored as 0, land here),
    the last bin holds log-f0 > `log_f0_max`, and the bins between split the range evenly.
    """

    def __init__(self, hidden_size: int, pitch_bins: int, log_f0_min: float, log_f0_max: float):
        super().__init__()
        self.pitch_bins = pitch_bins
        self.log_f0_min = log_f0_min
        self.log_f0_max = log_f0_max
        self.embedding = nn.Embedding(pitch_bins, hidden_size)

    def forward(self, log_f0: torch.Tensor) -> torch.Tensor:
        """`log_f0 (batch, F)` (natural log of Hz, 0 = unvoiced) → `(batch, F, H)`."""
        # bins in float32 whatever the model's dtype: bf16 would move log-f0 by up to a bin's width
        boundaries = torch.linspace(
            self.log_f0_min, self.log_f0_max, self.pitch_bins - 1, device=log_f0.device, dtype=torch.float32
        )
        return self.embedding(torch.bucketize(log_f0.float().contiguous(), boundaries))
