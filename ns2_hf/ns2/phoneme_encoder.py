"""Phoneme encoder: a Transformer whose feed-forward is a 1-D conv (FastSpeech style).

The attention and Transformer layers here are also the building blocks of the prompt encoder,
the variance predictors and the WaveNet's prompt attention. Every block takes a bool mask
(True = valid) and keeps padding from leaking: padded positions are zeroed before every conv,
attention never looks at padded keys, and nothing uses batch statistics, so a padded batch
gives each item exactly what the item gives alone.
"""

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


def sinusoidal_embedding(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer sine/cosine features of (possibly fractional) positions.

    Args:
        positions: `(...)` float positions (frame indices, or scaled diffusion times).
        dim: even feature size.

    Returns:
        `(..., dim)`: first half sines, second half cosines, frequencies from 1 to 1/10000.
    """
    half = dim // 2
    frequencies = torch.exp(
        -math.log(10000.0) * torch.arange(half, device=positions.device, dtype=torch.float32) / half
    )
    angles = positions.float().unsqueeze(-1) * frequencies
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def add_positional_encoding(hidden: torch.Tensor) -> torch.Tensor:
    """Add sinusoidal positions `0 .. T-1` to `hidden (batch, T, H)`."""
    positions = torch.arange(hidden.shape[1], device=hidden.device)
    return hidden + sinusoidal_embedding(positions, hidden.shape[-1]).to(hidden.dtype)


class MultiHeadAttention(nn.Module):
    """Multi-head query-key-value attention with a key-padding mask.

    Used as self-attention (`key_value` is the query sequence) and as cross-attention to the
    prompt (`key_value` is the prompt hidden).
    """

    def __init__(self, hidden_size: int, num_heads: int, dropout: float):
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(hidden_size, hidden_size)
        self.k_proj = nn.Linear(hidden_size, hidden_size)
        self.v_proj = nn.Linear(hidden_size, hidden_size)
        self.out_proj = nn.Linear(hidden_size, hidden_size)

    def _split_heads(self, hidden: torch.Tensor) -> torch.Tensor:
        batch, length, width = hidden.shape
        return hidden.view(batch, length, self.num_heads, width // self.num_heads).transpose(1, 2)

    def forward(
        self, query: torch.Tensor, key_value: torch.Tensor, key_mask: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """
        Args:
            query: `(batch, T, H)`.
            key_value: `(batch, S, H)`.
            key_mask: `(batch, S)` bool, True = the key takes part; None = all keys valid.
                Every item needs at least one valid key.

        Returns:
            `(batch, T, H)`.
        """
        q = self._split_heads(self.q_proj(query))
        k = self._split_heads(self.k_proj(key_value))
        v = self._split_heads(self.v_proj(key_value))
        attn_mask = None if key_mask is None else key_mask[:, None, None, :]
        attended = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )
        batch, _, length, _ = attended.shape
        return self.out_proj(attended.transpose(1, 2).reshape(batch, length, -1))


class ConvFeedForward(nn.Module):
    """The Transformer feed-forward replaced by two 1-D convs (kernel `kernel_size`, ReLU between)."""

    def __init__(self, hidden_size: int, filter_size: int, kernel_size: int, dropout: float):
        super().__init__()
        self.conv_in = nn.Conv1d(hidden_size, filter_size, kernel_size, padding=kernel_size // 2)
        self.conv_out = nn.Conv1d(filter_size, hidden_size, kernel_size, padding=kernel_size // 2)
        self.dropout = nn.Dropout(dropout)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """`hidden (batch, T, H)`, `mask (batch, T)` → `(batch, T, H)`, zero at padding."""
        channel_mask = mask.unsqueeze(1).to(hidden.dtype)
        hidden = hidden.transpose(1, 2) * channel_mask
        hidden = self.dropout(torch.relu(self.conv_in(hidden))) * channel_mask
        return (self.conv_out(hidden) * channel_mask).transpose(1, 2)


class TransformerLayer(nn.Module):
    """Pre-LayerNorm Transformer layer: masked self-attention, then the conv feed-forward."""

    def __init__(self, hidden_size: int, num_heads: int, filter_size: int, kernel_size: int, dropout: float):
        super().__init__()
        self.attention_norm = nn.LayerNorm(hidden_size)
        self.attention = MultiHeadAttention(hidden_size, num_heads, dropout)
        self.feed_forward_norm = nn.LayerNorm(hidden_size)
        self.feed_forward = ConvFeedForward(hidden_size, filter_size, kernel_size, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """`hidden (batch, T, H)`, `mask (batch, T)` → `(batch, T, H)`, zero at padding."""
        value_mask = mask.unsqueeze(-1).to(hidden.dtype)
        normed = self.attention_norm(hidden)
        hidden = (hidden + self.dropout(self.attention(normed, normed, mask))) * value_mask
        hidden = hidden + self.dropout(self.feed_forward(self.feed_forward_norm(hidden), mask))
        return hidden * value_mask


class TransformerEncoder(nn.Module):
    """A stack of :class:`TransformerLayer` and a final LayerNorm (over channels only)."""

    def __init__(
        self, num_layers: int, hidden_size: int, num_heads: int, filter_size: int, kernel_size: int, dropout: float
    ):
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerLayer(hidden_size, num_heads, filter_size, kernel_size, dropout) for _ in range(num_layers)
        )
        self.final_norm = nn.LayerNorm(hidden_size)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """`hidden (batch, T, H)`, `mask (batch, T)` → `(batch, T, H)`, zero at padding."""
        for layer in self.layers:
            hidden = layer(hidden, mask)
        return self.final_norm(hidden) * mask.unsqueeze(-1).to(hidden.dtype)


class PhonemeEncoder(nn.Module):
    """Phoneme ids → phoneme hidden: embedding + sinusoidal positions + Transformer layers."""

    def __init__(self, config):
        super().__init__()
        self.embedding = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.dropout = nn.Dropout(config.encoder_dropout)
        self.encoder = TransformerEncoder(
            config.phoneme_encoder_layers,
            config.hidden_size,
            config.num_attention_heads,
            config.encoder_ffn_filter_size,
            config.encoder_ffn_kernel_size,
            config.encoder_dropout,
        )

    def forward(self, phoneme_ids: torch.Tensor, phoneme_mask: torch.Tensor) -> torch.Tensor:
        """`phoneme_ids (batch, L)` long, `phoneme_mask (batch, L)` → `(batch, L, H)`, zero at padding."""
        hidden = self.dropout(add_positional_encoding(self.embedding(phoneme_ids)))
        return self.encoder(hidden, phoneme_mask)
