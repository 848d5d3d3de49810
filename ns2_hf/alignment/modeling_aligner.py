"""Built-in phoneme aligner: phoneme durations in codec frames without an external tool.

RAD-TTS style ("One TTS Alignment To Rule Them All", Badlani et al. 2022). A text encoder turns
phonemes into keys `(batch, tokens, attention_dim)`, a mel encoder turns log-mel frames (at the
codec hop) into queries `(batch, frames, attention_dim)`; the score of frame `t` and token `j` is
`-temperature * ||query_t - key_j||^2`, a log-softmax over the tokens (plus a beta-binomial prior
that favours the diagonal) gives soft alignment log-probabilities. Training minimises

* the **forward-sum loss**: CTC with a blank, the tokens of the utterance as the target sequence
  in order, i.e. the probability of all monotonic alignments; and, after a warm-up,
* the **binarization loss**: `-sum(hard * log soft) / frames`, pulling the soft alignment towards
  the hard one found by monotonic alignment search (MAS).

At inference, :meth:`NS2AlignerModel.align` returns MAS durations: at least one frame per token,
summing exactly to the frame count `ceil(samples / hop_length)`; :meth:`NS2AlignerModel.text_mismatch`, the
forward-sum loss per phoneme, says how badly a waveform says a text (`NS2Pipeline(num_candidates=N)` keeps the
candidate with the lowest).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from ..audio.mel import mel_spectrogram
from .configuration_aligner import NS2AlignerConfig
from .monotonic_align import AlignmentError, durations_from_alignment, monotonic_alignment_search

_MASKED_SCORE = -1e9  # score of padded tokens: exp() is 0, yet finite


@dataclass
class NS2AlignerOutput(ModelOutput):
    """Output of :class:`NS2AlignerModel`.

    Args:
        loss: `forward_sum_loss`, plus the weighted `binarization_loss` once past the warm-up.
        forward_sum_loss: CTC forward-sum loss (scalar).
        binarization_loss: `-sum(hard * log soft)` per aligned frame (scalar).
        log_probs: `(batch, frames, tokens)` soft alignment log-probabilities (prior included,
            about -1e9 on padded tokens).
        hard_alignment: `(batch, frames, tokens)` 0/1 MAS alignment, zeros on padding.
        durations: `(batch, tokens)` long frames per token (0 on padded tokens).
    """

    loss: Optional[torch.Tensor] = None
    forward_sum_loss: Optional[torch.Tensor] = None
    binarization_loss: Optional[torch.Tensor] = None
    log_probs: Optional[torch.Tensor] = None
    hard_alignment: Optional[torch.Tensor] = None
    durations: Optional[torch.Tensor] = None


class NS2AlignerTextEncoder(nn.Module):
    """Phoneme ids `(batch, tokens)` -> keys `(batch, tokens, attention_dim)`.

    Embedding, `num_text_layers` blocks of conv + ReLU + LayerNorm + dropout (padding zeroed
    before each conv), then a key projection (conv k=1, ReLU, conv k=1). RAD-TTS's key projection
    has kernel 3; a wide text context lets keys encode their neighbours' identity, and then an
    alignment shifted by a token fits the loss as well as the true one (seen on the festival
    voices): context stays limited to the text convolutions.
    """

    def __init__(self, config: NS2AlignerConfig):
        super().__init__()
        hidden, kernel = config.hidden_size, config.text_kernel_size
        self.embedding = nn.Embedding(config.vocab_size, hidden)
        self.convolutions = nn.ModuleList(
            nn.Conv1d(hidden, hidden, kernel, padding=kernel // 2) for _ in range(config.num_text_layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(config.num_text_layers))
        self.dropout = nn.Dropout(config.dropout)
        self.key_projection = nn.Sequential(
            nn.Conv1d(hidden, 2 * hidden, 1), nn.ReLU(), nn.Conv1d(2 * hidden, config.attention_dim, 1)
        )

    def forward(self, phoneme_ids: torch.Tensor, phoneme_mask: torch.Tensor) -> torch.Tensor:
        mask = phoneme_mask.unsqueeze(1).to(self.embedding.weight.dtype)  # (batch, 1, tokens)
        hidden = self.embedding(phoneme_ids).transpose(1, 2)  # (batch, hidden, tokens)
        for convolution, norm in zip(self.convolutions, self.norms):
            hidden = torch.relu(convolution(hidden * mask))
            hidden = self.dropout(norm(hidden.transpose(1, 2)).transpose(1, 2))
        return self.key_projection(hidden * mask).transpose(1, 2)


class NS2AlignerMelEncoder(nn.Module):
    """Log-mel `(batch, n_mels, frames)` -> queries `(batch, frames, attention_dim)`: per-utterance
    mean/variance normalisation, then RAD-TTS's query projection (conv k=3, ReLU, conv k=1, ReLU,
    conv k=1)."""

    def __init__(self, config: NS2AlignerConfig):
        super().__init__()
        n_mels = config.n_mels
        self.query_projection = nn.Sequential(
            nn.Conv1d(n_mels, 2 * n_mels, 3, padding=1),
            nn.ReLU(),
            nn.Conv1d(2 * n_mels, n_mels, 1),
            nn.ReLU(),
            nn.Conv1d(n_mels, config.attention_dim, 1),
        )

    def forward(self, mel: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        # Per-utterance mean and variance normalisation of each mel band over the valid frames
        # (recording gain and channel drop out; padding becomes 0, the utterance mean).
        mask = frame_mask.unsqueeze(1).to(mel.dtype)  # (batch, 1, frames)
        count = mask.sum(-1, keepdim=True).clamp(min=1)
        mean = (mel * mask).sum(-1, keepdim=True) / count
        std = (((mel - mean) * mask).pow(2).sum(-1, keepdim=True) / count).sqrt().clamp(min=1e-3)
        return self.query_projection((mel - mean) / std * mask).transpose(1, 2)


def beta_binomial_log_prior(
    token_lengths: torch.Tensor, frame_lengths: torch.Tensor, num_tokens: int, num_frames: int, scaling: float
) -> torch.Tensor:
    """Log of RAD-TTS's static alignment prior, `(batch, frames, tokens)`.

    For an utterance of `L` tokens and `F` frames, frame `t` (1-based) gets a beta-binomial
    distribution over tokens `k = 0..L-1` with `n = L - 1`, `alpha = scaling * t` and
    `beta = scaling * (F - t + 1)`: its mass slides along the diagonal. Floored at 1e-8 as in
    RAD-TTS so that the prior guides without forbidding. Padding positions get 0.
    """
    device = token_lengths.device
    frame = torch.arange(1, num_frames + 1, device=device, dtype=torch.float32).view(1, -1, 1)
    token = torch.arange(num_tokens, device=device, dtype=torch.float32).view(1, 1, -1)
    n = (token_lengths.float() - 1).view(-1, 1, 1)
    alpha = scaling * frame
    beta = (scaling * (frame_lengths.float().view(-1, 1, 1) - frame + 1)).clamp(min=1e-3)
    remaining = (n - token).clamp(min=0)

    def log_beta_function(x, y):
        return torch.lgamma(x) + torch.lgamma(y) - torch.lgamma(x + y)

    log_pmf = (
        torch.lgamma(n + 1)
        - torch.lgamma(token + 1)
        - torch.lgamma(remaining + 1)
        + log_beta_function(token + alpha, remaining + beta)
        - log_beta_function(alpha, beta)
    )
    log_prior = torch.logaddexp(log_pmf, torch.tensor(math.log(1e-8), device=device))
    valid = (token <= n) & (frame <= frame_lengths.view(-1, 1, 1))
    return log_prior.masked_fill(~valid, 0.0)


def forward_sum_loss(
    log_probs: torch.Tensor, token_lengths: torch.Tensor, frame_lengths: torch.Tensor, blank_logprob: float,
    reduction: str = "mean",
) -> torch.Tensor:
    """CTC loss of emitting every token in order, summed over all monotonic alignments.

    Args:
        log_probs: `(batch, frames, tokens)` alignment log-probabilities, about -1e9 on padded tokens.
        token_lengths, frame_lengths: `(batch,)` long.
        blank_logprob: score of the blank class prepended to the tokens before renormalising.
        reduction: `"mean"`, or `"none"` for each item's loss per target token.

    Returns:
        Scalar (`"mean"`): the CTC loss per target token, averaged over the batch; `(batch,)` for `"none"`.
    """
    with_blank = F.pad(log_probs, (1, 0), value=blank_logprob)  # class 0 = blank
    with_blank = F.log_softmax(with_blank, dim=-1)
    batch, _, num_tokens = log_probs.shape
    targets = torch.arange(1, num_tokens + 1, device=log_probs.device).expand(batch, num_tokens)
    loss = F.ctc_loss(
        with_blank.transpose(0, 1),  # (frames, batch, tokens + 1)
        targets,
        input_lengths=frame_lengths,
        target_lengths=token_lengths,
        blank=0,
        reduction=reduction,
        zero_infinity=True,
    )
    return loss if reduction == "mean" else loss / token_lengths.to(loss.dtype)


def binarization_loss(log_probs: torch.Tensor, hard_alignment: torch.Tensor) -> torch.Tensor:
    """`-sum(hard * log soft) / sum(hard)`: mean negative log-probability of the MAS path.

    Args:
        log_probs: `(batch, frames, tokens)` soft alignment log-probabilities.
        hard_alignment: `(batch, frames, tokens)` 0/1 MAS alignment.
    """
    soft_log_probs = torch.log_softmax(log_probs, dim=-1).clamp(min=math.log(1e-12))
    return -(hard_alignment * soft_log_probs).sum() / hard_alignment.sum()


class NS2AlignerPreTrainedModel(PreTrainedModel):
    config_class = NS2AlignerConfig
    base_model_prefix = "aligner"
    main_input_name = "phoneme_ids"

    def _init_weights(self, module):
        if isinstance(module, nn.Conv1d):
            init.xavier_uniform_(module.weight, gain=nn.init.calculate_gain("relu"))
            init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)


class NS2AlignerModel(NS2AlignerPreTrainedModel):
    """Unsupervised phoneme aligner (see the module docstring).

    Inputs of :meth:`forward` and :meth:`align`:
        phoneme_ids: `(batch, tokens)` long.
        phoneme_mask: `(batch, tokens)` bool, True on real tokens (default: all).
        mel: `(batch, n_mels, frames)` log-mel from :meth:`features`, or
        waveform: `(samples,)` / `(batch, samples)` float at `config.sampling_rate` (features are
            computed from it; a padded batch needs `frame_mask`).
        frame_mask: `(batch, frames)` bool, True on real frames, i.e. the first
            `ceil(samples / hop_length)` of each item (default: all).
    """

    def __init__(self, config: NS2AlignerConfig):
        super().__init__(config)
        self.text_encoder = NS2AlignerTextEncoder(config)
        self.mel_encoder = NS2AlignerMelEncoder(config)
        self.post_init()

    @torch.no_grad()
    def features(self, waveform: Union[torch.Tensor, np.ndarray]) -> torch.Tensor:
        """Log-mel features on the codec frame grid.

        The waveform is right-padded with zeros to a multiple of the hop (as the codec does) and
        analysed without centring, so frame `i` is the window centred on the middle of samples
        `[i * hop, (i + 1) * hop)`, the span codec frame `i` covers.

        Args:
            waveform: `(samples,)` or `(batch, samples)`.

        Returns:
            `(batch, n_mels, ceil(samples / hop_length))` float32 log-mel.
        """
        waveform = torch.as_tensor(waveform, dtype=torch.float32, device=self.device)
        if waveform.dim() == 1:
            waveform = waveform.unsqueeze(0)
        hop = self.config.hop_length
        num_frames = math.ceil(waveform.shape[-1] / hop)
        # At least n_fft samples so that the STFT's reflect padding has enough signal.
        padded_length = max(num_frames * hop, self.config.n_fft)
        waveform = F.pad(waveform, (0, padded_length - waveform.shape[-1]))
        mel = mel_spectrogram(
            waveform,
            sampling_rate=self.config.sampling_rate,
            n_fft=self.config.n_fft,
            hop_length=hop,
            n_mels=self.config.n_mels,
            center=False,
        )
        return mel[..., :num_frames]

    def _prepare_inputs(self, phoneme_ids, phoneme_mask, mel, waveform, frame_mask):
        if (mel is None) == (waveform is None):
            raise ValueError("pass exactly one of `mel` (from `features`) or `waveform`.")
        if mel is None:
            mel = self.features(waveform)
        if mel.dim() != 3 or mel.shape[1] != self.config.n_mels:
            raise ValueError(f"mel must have shape (batch, {self.config.n_mels}, frames), got {tuple(mel.shape)}.")
        if phoneme_ids.dim() != 2 or phoneme_ids.shape[0] != mel.shape[0]:
            raise ValueError(
                f"phoneme_ids must have shape (batch, tokens) with the mel's batch size {mel.shape[0]}, "
                f"got {tuple(phoneme_ids.shape)}."
            )
        if phoneme_mask is None:
            phoneme_mask = torch.ones_like(phoneme_ids, dtype=torch.bool)
        if frame_mask is None:
            frame_mask = torch.ones(mel.shape[0], mel.shape[2], dtype=torch.bool, device=mel.device)
        if frame_mask.shape != (mel.shape[0], mel.shape[2]):
            raise ValueError(f"frame_mask must have shape {(mel.shape[0], mel.shape[2])}, got {tuple(frame_mask.shape)}.")
        token_lengths, frame_lengths = phoneme_mask.sum(1), frame_mask.sum(1)
        too_short = torch.nonzero(frame_lengths < token_lengths).flatten().tolist()
        if too_short:
            item = too_short[0]
            raise AlignmentError(
                f"batch item {item} has {int(token_lengths[item])} phonemes but only {int(frame_lengths[item])} "
                "frames; every phoneme needs at least one frame (audio too short for the text?)."
            )
        return phoneme_ids, phoneme_mask.bool(), mel, frame_mask.bool()

    def alignment_log_probs(self, phoneme_ids, phoneme_mask, mel, frame_mask) -> torch.Tensor:
        """Soft alignment log-probabilities `(batch, frames, tokens)`, the prior included, about -1e9 on padded
        tokens (inputs as checked by `_prepare_inputs`)."""
        keys = self.text_encoder(phoneme_ids, phoneme_mask)  # (batch, tokens, attention_dim)
        queries = self.mel_encoder(mel, frame_mask)  # (batch, frames, attention_dim)
        # Squared L2 distance (batch, frames, tokens) as |q|^2 - 2 q.k + |k|^2: no (frames x tokens x dim) tensor.
        distances = (
            queries.pow(2).sum(-1, keepdim=True) - 2 * queries @ keys.transpose(1, 2) + keys.pow(2).sum(-1).unsqueeze(1)
        )
        # Finite mask value: -inf would turn CTC's gradient into NaN.
        scores = (-self.config.attention_temperature * distances).masked_fill(~phoneme_mask.unsqueeze(1), _MASKED_SCORE)
        log_probs = F.log_softmax(scores, dim=-1)
        if self.config.prior_scaling > 0:
            token_lengths, frame_lengths = phoneme_mask.sum(1), frame_mask.sum(1)
            log_probs = log_probs + beta_binomial_log_prior(
                token_lengths, frame_lengths, log_probs.shape[2], log_probs.shape[1], self.config.prior_scaling
            )
        return log_probs

    @torch.no_grad()
    def text_mismatch(self, phoneme_ids: torch.Tensor, waveform: torch.Tensor) -> float:
        """How badly a waveform says a text: the forward-sum (CTC) loss per phoneme of the phonemes in order given
        the audio, every monotonic alignment summed — the aligner's training objective, lower when each stretch of
        the audio sounds like its phoneme. `NS2Pipeline(num_candidates=N)` keeps the candidate with the lowest.

        Args:
            phoneme_ids: `(1, tokens)` the text's phoneme ids (no padding).
            waveform: `(samples,)` at the aligner's rate.

        Raises:
            AlignmentError: the waveform has fewer codec frames than the text has phonemes.
        """
        was_training = self.training
        self.eval()
        try:
            phoneme_ids, phoneme_mask, mel, frame_mask = self._prepare_inputs(phoneme_ids, None, None, waveform, None)
            log_probs = self.alignment_log_probs(phoneme_ids, phoneme_mask, mel, frame_mask)
            loss = forward_sum_loss(log_probs, phoneme_mask.sum(1), frame_mask.sum(1), self.config.blank_logprob,
                                    reduction="none")
            return float(loss[0])
        finally:
            self.train(was_training)

    def forward(
        self,
        phoneme_ids: torch.Tensor,
        phoneme_mask: Optional[torch.Tensor] = None,
        mel: Optional[torch.Tensor] = None,
        waveform: Optional[torch.Tensor] = None,
        frame_mask: Optional[torch.Tensor] = None,
        global_step: Optional[int] = None,
    ) -> NS2AlignerOutput:
        """Soft and hard alignments and the training losses.

        Args:
            global_step: training step; the binarization loss joins `loss` from
                `config.binarization_start_step` on (None counts as past the warm-up).
        """
        phoneme_ids, phoneme_mask, mel, frame_mask = self._prepare_inputs(
            phoneme_ids, phoneme_mask, mel, waveform, frame_mask
        )
        log_probs = self.alignment_log_probs(phoneme_ids, phoneme_mask, mel, frame_mask)
        token_lengths, frame_lengths = phoneme_mask.sum(1), frame_mask.sum(1)
        hard_alignment = monotonic_alignment_search(log_probs, phoneme_mask, frame_mask)
        fs_loss = forward_sum_loss(log_probs, token_lengths, frame_lengths, self.config.blank_logprob)
        bin_loss = binarization_loss(log_probs, hard_alignment)
        loss = fs_loss
        if global_step is None or global_step >= self.config.binarization_start_step:
            loss = loss + self.config.binarization_loss_weight * bin_loss
        return NS2AlignerOutput(
            loss=loss,
            forward_sum_loss=fs_loss,
            binarization_loss=bin_loss,
            log_probs=log_probs,
            hard_alignment=hard_alignment,
            durations=durations_from_alignment(hard_alignment),
        )

    @torch.no_grad()
    def align(
        self,
        phoneme_ids: torch.Tensor,
        phoneme_mask: Optional[torch.Tensor] = None,
        mel: Optional[torch.Tensor] = None,
        waveform: Optional[torch.Tensor] = None,
        frame_mask: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Phoneme durations in codec frames, `(batch, tokens)` long: each real token gets at
        least one frame, each item's durations sum to its number of valid frames, padded tokens
        get 0.

        Raises:
            AlignmentError: if an item has fewer frames than phonemes.
        """
        was_training = self.training
        self.eval()
        try:
            return self.forward(phoneme_ids, phoneme_mask, mel, waveform, frame_mask).durations
        finally:
            self.train(was_training)
