"""The diffusion denoiser: a non-causal WaveNet that predicts the clean latent ẑ₀.

Conditioning, as in the paper:
- diffusion time t ∈ [0, 1]: sinusoidal features + MLP, added to every layer's input;
- the frame condition c (phoneme hidden regulated to frames + pitch embedding): a 1×1 conv per
  layer, added before the gate;
- the speech prompt: m learned query tokens attend to the prompt hidden; every `film_every`
  layers the WaveNet hidden attends to those m vectors, and the result gives a FiLM scale and
  shift (attending to the raw prompt directly leaks its details into the output). With
  `drop_prompt` an item's query tokens attend to nothing: the *null prompt* of prompt guidance
  (ours, `NS2Config.prompt_dropout`). With `drop_condition` an item's frame condition is zero: the
  *null content* of content guidance (ours, `NS2Config.condition_dropout`).
"""

import math
from typing import Optional

import torch
from torch import nn

from .phoneme_encoder import MultiHeadAttention, sinusoidal_embedding

# t ∈ [0, 1] is scaled to [0, 1000] before the sinusoidal features, the range of DDPM step indices
# for which those frequencies were designed.
TIME_EMBEDDING_SCALE = 1000.0


class DiffusionTimeEmbedding(nn.Module):
    """`timesteps (batch,)` continuous t ∈ [0, 1] → `(batch, H)`."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.mlp = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size))

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        # the features are computed in float32 (t needs its precision), then cast to the weights' dtype
        features = sinusoidal_embedding(timesteps * TIME_EMBEDDING_SCALE, self.hidden_size)
        return self.mlp(features.to(self.mlp[0].weight.dtype))


class PromptQueryTokens(nn.Module):
    """m learned query tokens attend to the prompt hidden: `(batch, P, H)` → `(batch, m, H)`."""

    def __init__(self, num_tokens: int, hidden_size: int, num_heads: int, dropout: float):
        super().__init__()
        self.query_tokens = nn.Parameter(torch.empty(num_tokens, hidden_size))
        self.attention = MultiHeadAttention(hidden_size, num_heads, dropout)
        self.norm = nn.LayerNorm(hidden_size)

    def forward(
        self, prompt_hidden: torch.Tensor, prompt_mask: torch.Tensor, drop_prompt: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """`prompt_hidden (batch, P, H)`, `prompt_mask (batch, P)` → `(batch, m, H)`; items where
        `drop_prompt (batch,)` bool is True get the null prompt, the normalised queries alone."""
        queries = self.query_tokens.unsqueeze(0).expand(prompt_hidden.shape[0], -1, -1)
        attended = self.attention(queries, prompt_hidden, prompt_mask)
        if drop_prompt is not None:
            attended = attended * (~drop_prompt).to(attended.dtype)[:, None, None]
        return self.norm(queries + attended)


class PromptFiLM(nn.Module):
    """The WaveNet hidden attends to the prompt query tokens; the result gives FiLM scale/shift."""

    def __init__(self, hidden_size: int, num_heads: int, dropout: float):
        super().__init__()
        self.attention = MultiHeadAttention(hidden_size, num_heads, dropout)
        self.scale_shift = nn.Linear(hidden_size, 2 * hidden_size)

    def forward(self, hidden: torch.Tensor, prompt_tokens: torch.Tensor) -> torch.Tensor:
        """`hidden (batch, H, F)`, `prompt_tokens (batch, m, H)` → `hidden · (1 + scale) + shift`, `(batch, H, F)`."""
        attended = self.attention(hidden.transpose(1, 2), prompt_tokens)
        scale, shift = self.scale_shift(attended).transpose(1, 2).chunk(2, dim=1)
        return hidden * (1 + scale) + shift


class WaveNetLayer(nn.Module):
    """One residual layer: dilated conv + condition, tanh·sigmoid gate, 1×1 conv to residual and skip."""

    def __init__(
        self,
        hidden_size: int,
        filter_size: int,
        kernel_size: int,
        dilation: int,
        dropout: float,
        film: Optional[PromptFiLM],
    ):
        super().__init__()
        self.time_proj = nn.Linear(hidden_size, hidden_size)
        self.film = film
        self.dropout = nn.Dropout(dropout)
        self.dilated_conv = nn.Conv1d(
            hidden_size, filter_size, kernel_size, dilation=dilation, padding=dilation * (kernel_size - 1) // 2
        )
        self.condition_proj = nn.Conv1d(hidden_size, filter_size, 1)
        self.output_proj = nn.Conv1d(filter_size // 2, 2 * hidden_size, 1)

    def forward(
        self,
        hidden: torch.Tensor,
        time_embedding: torch.Tensor,
        condition: torch.Tensor,
        frame_mask: torch.Tensor,
        prompt_tokens: torch.Tensor,
    ):
        """
        Args:
            hidden: `(batch, H, F)`, zero at padding.
            time_embedding: `(batch, H)`.
            condition: `(batch, H, F)`, zero at padding.
            frame_mask: `(batch, 1, F)` float, 1 = valid.
            prompt_tokens: `(batch, m, H)`.

        Returns:
            `(next hidden (batch, H, F), skip (batch, H, F))`, both zero at padding.
        """
        layer_input = hidden + self.time_proj(time_embedding).unsqueeze(-1)
        if self.film is not None:
            layer_input = self.film(layer_input, prompt_tokens)
        layer_input = self.dropout(layer_input) * frame_mask
        gate_input = self.dilated_conv(layer_input) + self.condition_proj(condition)
        filter_part, gate_part = gate_input.chunk(2, dim=1)
        gated = torch.tanh(filter_part) * torch.sigmoid(gate_part)
        residual, skip = self.output_proj(gated).chunk(2, dim=1)
        return (hidden + residual) * frame_mask / math.sqrt(2.0), skip * frame_mask


class WaveNetDenoiser(nn.Module):
    """Noisy latent z_t `(batch, D, F)` + t + condition + prompt → predicted clean latent ẑ₀ `(batch, D, F)`."""

    def __init__(self, config):
        super().__init__()
        hidden = config.hidden_size
        self.input_proj = nn.Conv1d(config.latent_dim, hidden, 1)
        self.time_embedding = DiffusionTimeEmbedding(hidden)
        self.prompt_query_tokens = PromptQueryTokens(
            config.num_query_tokens, hidden, config.wavenet_attention_heads, config.wavenet_dropout
        )
        self.layers = nn.ModuleList(
            WaveNetLayer(
                hidden,
                config.wavenet_filter_size,
                config.wavenet_kernel_size,
                dilation=2 ** (index % config.wavenet_dilation_cycle),
                dropout=config.wavenet_dropout,
                film=(
                    PromptFiLM(hidden, config.wavenet_attention_heads, config.wavenet_dropout)
                    if index % config.film_every == 0
                    else None
                ),
            )
            for index in range(config.wavenet_layers)
        )
        self.skip_proj = nn.Conv1d(hidden, hidden, 1)
        self.output_proj = nn.Conv1d(hidden, config.latent_dim, 1)

    def forward(
        self,
        noisy_latents: torch.Tensor,
        timesteps: torch.Tensor,
        condition: torch.Tensor,
        frame_mask: torch.Tensor,
        prompt_hidden: torch.Tensor,
        prompt_mask: torch.Tensor,
        drop_prompt: Optional[torch.Tensor] = None,
        drop_condition: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """
        Args:
            noisy_latents: `(batch, D, F)` z_t in the normalised latent space.
            timesteps: `(batch,)` diffusion time t ∈ [0, 1].
            condition: `(batch, H, F)` frame condition c.
            frame_mask: `(batch, F)` bool, True = valid frame.
            prompt_hidden: `(batch, P, H)` prompt encoder output.
            prompt_mask: `(batch, P)` bool.
            drop_prompt: `(batch,)` bool, True = that item gets the null prompt (None: no item).
            drop_condition: `(batch,)` bool, True = that item's frame condition is zero (None: no item).

        Returns:
            `(batch, D, F)` predicted clean latent ẑ₀ (normalised space), zero at padding.
        """
        channel_mask = frame_mask.unsqueeze(1).to(noisy_latents.dtype)
        hidden = self.input_proj(noisy_latents * channel_mask) * channel_mask
        condition = condition * channel_mask
        if drop_condition is not None:
            condition = condition * (~drop_condition).to(condition.dtype)[:, None, None]
        time_embedding = self.time_embedding(timesteps)
        prompt_tokens = self.prompt_query_tokens(prompt_hidden, prompt_mask, drop_prompt)
        skip_sum = torch.zeros_like(hidden)
        for layer in self.layers:
            hidden, skip = layer(hidden, time_embedding, condition, channel_mask, prompt_tokens)
            skip_sum = skip_sum + skip
        output = torch.relu(self.skip_proj(torch.relu(skip_sum / math.sqrt(len(self.layers)))))
        return self.output_proj(output) * channel_mask
