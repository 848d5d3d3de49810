"""Prompt encoder: codec latents of the speech prompt → prompt hidden.

The paper's prompt encoder has the phoneme encoder's architecture (Transformer layers with a
conv feed-forward); here a linear layer lifts the latent channels to the hidden size first.
"""

import torch
from torch import nn

from .phoneme_encoder import TransformerEncoder, add_positional_encoding


class PromptEncoder(nn.Module):
    """`prompt_latents (batch, latent_dim, P)` → `prompt_hidden (batch, P, H)`."""

    def __init__(self, config):
        super().__init__()
        self.input_proj = nn.Linear(config.latent_dim, config.hidden_size)
        self.dropout = nn.Dropout(config.encoder_dropout)
        self.encoder = TransformerEncoder(
            config.prompt_encoder_layers,
            config.hidden_size,
            config.num_attention_heads,
            config.encoder_ffn_filter_size,
            config.encoder_ffn_kernel_size,
            config.encoder_dropout,
        )

    def forward(self, prompt_latents: torch.Tensor, prompt_mask: torch.Tensor) -> torch.Tensor:
        """
        Args:
            prompt_latents: `(batch, latent_dim, P)` (normalised) codec latents of the prompt.
            prompt_mask: `(batch, P)` bool, True = valid frame.

        Returns:
            `(batch, P, H)`, zero at padding.
        """
        hidden = self.input_proj(prompt_latents.transpose(1, 2))
        hidden = self.dropout(add_positional_encoding(hidden)) * prompt_mask.unsqueeze(-1).to(hidden.dtype)
        return self.encoder(hidden, prompt_mask)
