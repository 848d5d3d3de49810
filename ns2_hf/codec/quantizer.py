"""Residual vector quantizer (RVQ) of the NaturalSpeech 2 codec.

The codebook vectors live directly in the latent space (no in/out projections, unlike DAC), so the sum of the
selected codebook vectors *is* the quantized latent that the diffusion model generates, and the CE-RVQ loss can
score residuals against the codebooks returned by :attr:`NS2ResidualVectorQuantizer.codebooks`.

Codebooks are updated by exponential moving averages of the encoder frames assigned to them (SoundStream /
EnCodec), not by a codebook loss; unused codes are restarted at random encoder frames.

Under `torch.distributed` (DDP through accelerate, one process per device) every process holds the same codebooks
and takes the same update: the per-code counts and frame sums are all-reduced before the EMA step, dead codes are
restarted at frames drawn from every process's batch, and quantizer dropout draws one depth for all processes. The
update is the one a single process would take on the union of the processes' batches. Without an initialised
process group (one process) nothing is communicated. The training scripts turn DDP's buffer broadcast off
(`training/trainer_utils.ddp_kwargs`): the codebooks are already equal, and the broadcast would cost a copy of
them at every forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers.utils import ModelOutput

from .configuration_codec import NS2CodecConfig


def _world_size() -> int:
    """Number of processes taking part in training (1 when `torch.distributed` is not initialised)."""
    distributed = torch.distributed
    return distributed.get_world_size() if distributed.is_available() and distributed.is_initialized() else 1


@dataclass
class NS2QuantizerOutput(ModelOutput):
    """
    Args:
        quantized_latents (`torch.Tensor` of shape `(batch, latent_dim, frames)`):
            Sum of the selected codebook vectors, with straight-through gradients to the input latents; zero in
            padded frames.
        audio_codes (`torch.LongTensor` of shape `(batch, n_quantizers_used, frames)`):
            Index of the selected code of each active quantizer (meaningless in padded frames).
        commitment_loss (`torch.Tensor`, scalar):
            Mean over active quantizers of the squared distance between each quantizer's input residual and its
            (detached) codebook vector, over valid frames. Gradient flows to the latents only.
    """

    quantized_latents: torch.Tensor | None = None
    audio_codes: torch.LongTensor | None = None
    commitment_loss: torch.Tensor | None = None


class NS2ResidualVectorQuantizer(nn.Module):
    """Residual vector quantizer with EMA codebooks, dead-code restart and quantizer dropout.

    Buffers (all saved with the model):
        embeddings: `(num_quantizers, codebook_size, latent_dim)` the codebook vectors.
        cluster_size: `(num_quantizers, codebook_size)` moving-average number of assignments per training step.
        embedding_sum: `(num_quantizers, codebook_size, latent_dim)` moving-average sum of assigned frames;
            in training `embeddings = embedding_sum / cluster_size` (Laplace-smoothed).
    """

    def __init__(self, config: NS2CodecConfig):
        super().__init__()
        self.num_quantizers = config.num_quantizers
        self.codebook_size = config.codebook_size
        self.latent_dim = config.latent_dim
        self.quantizer_dropout = config.quantizer_dropout
        self.decay = config.codebook_ema_decay
        self.dead_code_threshold = config.dead_code_threshold
        shape = (config.num_quantizers, config.codebook_size, config.latent_dim)
        self.register_buffer("embeddings", torch.randn(shape))
        self.register_buffer("cluster_size", torch.zeros(shape[:2]))
        self.register_buffer("embedding_sum", torch.zeros(shape))

    @property
    def codebooks(self) -> torch.Tensor:
        """The codebook vectors, `(num_quantizers, codebook_size, latent_dim)`."""
        return self.embeddings

    def codes_to_latents(self, audio_codes: torch.LongTensor) -> torch.Tensor:
        """Sum of the codebook vectors that `audio_codes` select.

        Args:
            audio_codes: `(batch, k, frames)` with `k <= num_quantizers`; row `i` indexes codebook `i`.

        Returns:
            `(batch, latent_dim, frames)` quantized latents.
        """
        if audio_codes.dim() != 3:
            raise ValueError(f"`audio_codes` must be (batch, n_quantizers, frames), got shape {tuple(audio_codes.shape)}.")
        n_used = audio_codes.shape[1]
        if not 1 <= n_used <= self.num_quantizers:
            raise ValueError(f"`audio_codes` has {n_used} quantizer rows; the codec has {self.num_quantizers}.")
        if audio_codes.dtype not in (torch.int64, torch.int32) or (
            audio_codes.numel() and (audio_codes.min() < 0 or audio_codes.max() >= self.codebook_size)
        ):
            raise ValueError(f"`audio_codes` must be integers in [0, {self.codebook_size}).")
        batch, _, n_frames = audio_codes.shape
        latents = torch.zeros(batch, n_frames, self.latent_dim, device=audio_codes.device, dtype=self.embeddings.dtype)
        for index in range(n_used):  # same summation order as `forward`, so both give identical latents
            latents = latents + self.embeddings[index][audio_codes[:, index].long()]
        return latents.transpose(1, 2)

    def _active_quantizers(self, n_quantizers: int | None) -> int:
        if n_quantizers is not None:
            if not 1 <= n_quantizers <= self.num_quantizers:
                raise ValueError(f"`n_quantizers` must be in [1, {self.num_quantizers}], got {n_quantizers}.")
            return int(n_quantizers)
        if not (self.training and self.quantizer_dropout > 0):
            return self.num_quantizers
        n_active = torch.tensor(self.num_quantizers)
        if torch.rand(()) < self.quantizer_dropout:
            n_active = torch.randint(1, self.num_quantizers + 1, ())
        if _world_size() > 1:  # one depth for the whole (multi-process) batch: rank 0's draw
            n_active = n_active.to(self.embeddings.device)
            torch.distributed.broadcast(n_active, src=0)
        return int(n_active)

    @torch.no_grad()
    def _restart_dead_codes(self, index: int, frames: torch.Tensor) -> None:
        """Move codes of quantizer `index` used less than `dead_code_threshold` times per step onto random rows
        of `frames` `(n_valid, latent_dim)`, giving each the usage of exactly the threshold.

        With several processes each one draws a candidate per dead code from its own `frames` (possibly empty);
        dead code `j` takes the candidate of the `j % n`-th of the `n` processes that have frames, so the
        restarts spread over every process's data and are the same on all of them."""
        dead = self.cluster_size[index] < self.dead_code_threshold
        n_dead = int(dead.sum())  # the same on every process: `cluster_size` is kept equal
        if n_dead == 0:
            return
        if frames.shape[0]:
            samples = frames[torch.randint(0, frames.shape[0], (n_dead,), device=frames.device)]
        else:
            samples = frames.new_zeros(n_dead, self.latent_dim)
        world_size = _world_size()
        if world_size > 1:
            candidates = [torch.empty_like(samples) for _ in range(world_size)]
            torch.distributed.all_gather(candidates, samples.contiguous())
            has_frames = torch.tensor([float(frames.shape[0] > 0)], device=frames.device)
            flags = [torch.empty_like(has_frames) for _ in range(world_size)]
            torch.distributed.all_gather(flags, has_frames)
            sources = [rank for rank, flag in enumerate(flags) if flag.item() > 0]
            if not sources:
                return
            rows = torch.arange(n_dead, device=frames.device)
            source_of_row = torch.tensor(sources, device=frames.device)[rows % len(sources)]
            samples = torch.stack(candidates)[source_of_row, rows]
        elif not frames.shape[0]:
            return
        self.embeddings[index, dead] = samples
        self.cluster_size[index, dead] = self.dead_code_threshold
        self.embedding_sum[index, dead] = samples * self.dead_code_threshold

    @torch.no_grad()
    def _update_codebook(self, index: int, frames: torch.Tensor, codes: torch.Tensor) -> None:
        """EMA update of quantizer `index` from `frames` `(n_valid, latent_dim)` assigned to `codes` `(n_valid,)`."""
        counts = torch.bincount(codes, minlength=self.codebook_size).to(frames.dtype)
        sums = torch.zeros_like(self.embedding_sum[index]).index_add_(0, codes, frames)
        if _world_size() > 1:  # the statistics of the union of all processes' frames
            statistics = torch.cat([sums, counts.unsqueeze(1)], dim=1)
            torch.distributed.all_reduce(statistics)
            sums, counts = statistics[:, :-1], statistics[:, -1]
        self.cluster_size[index].mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embedding_sum[index].mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size[index].sum()
        epsilon = 1e-5  # Laplace smoothing of the usage counts: no division by zero
        smoothed = (self.cluster_size[index] + epsilon) / (total + self.codebook_size * epsilon) * total
        self.embeddings[index] = self.embedding_sum[index] / smoothed.unsqueeze(1)

    def _nearest_codes(self, index: int, frames: torch.Tensor) -> torch.Tensor:
        """Index of the nearest (L2) code of quantizer `index` for each row of `frames` `(n, latent_dim)`."""
        codebook = self.embeddings[index]
        # squared distance minus |frame|^2, which is the same for every code
        distances = codebook.pow(2).sum(1).unsqueeze(0) - 2 * frames @ codebook.t()
        return distances.argmin(dim=1)

    def forward(
        self, latents: torch.Tensor, mask: torch.Tensor | None = None, n_quantizers: int | None = None
    ) -> NS2QuantizerOutput:
        """Quantize `latents` with the first `n_quantizers` quantizers.

        Args:
            latents: `(batch, latent_dim, frames)` encoder output.
            mask: `(batch, frames)` bool, True = valid frame. Padded frames get zero quantized latents and take
                no part in the commitment loss or the codebook updates.
            n_quantizers: number of quantizers to use (1..num_quantizers). `None` = all of them in eval mode; in
                training mode `None` applies quantizer dropout (see `NS2CodecConfig.quantizer_dropout`).

        In training mode, before quantizer `i` assigns codes, its dead codes are restarted at random valid
        residual frames; after, its codebook takes an EMA step towards the frames assigned to each code.
        """
        if latents.dim() != 3 or latents.shape[1] != self.latent_dim:
            raise ValueError(f"`latents` must be (batch, {self.latent_dim}, frames), got {tuple(latents.shape)}.")
        batch, _, n_frames = latents.shape
        if mask is None:
            mask = torch.ones(batch, n_frames, dtype=torch.bool, device=latents.device)
        elif mask.shape != (batch, n_frames):
            raise ValueError(f"`mask` must have shape {(batch, n_frames)}, got {tuple(mask.shape)}.")
        n_active = self._active_quantizers(n_quantizers)

        # (B*F, D), with gradient; in the codebooks' dtype (float32 EMA statistics under autocast)
        frames = latents.transpose(1, 2).reshape(-1, self.latent_dim).to(self.embeddings.dtype)
        valid = mask.reshape(-1).bool()
        any_valid = bool(valid.any())
        # with several processes every one joins the collective update, even one with only padding
        update_codebooks = self.training and (any_valid or _world_size() > 1)
        residual = frames.detach()
        quantized = torch.zeros_like(residual)
        codes, commitment_losses = [], []
        for index in range(n_active):
            if update_codebooks:
                self._restart_dead_codes(index, residual[valid])
            codes_i = self._nearest_codes(index, residual)
            vectors = self.embeddings[index][codes_i]
            if update_codebooks:
                self._update_codebook(index, residual[valid], codes_i[valid])
            if any_valid:  # this quantizer's input residual, with gradient, against its chosen vectors
                commitment_losses.append((frames[valid] - quantized[valid] - vectors[valid]).pow(2).mean())
            quantized = quantized + vectors
            residual = residual - vectors
            codes.append(codes_i.view(batch, n_frames))

        # straight-through estimator: the value is exactly `quantized`, the gradient goes to `frames` unchanged
        straight_through = (quantized + (frames - frames.detach())) * valid.unsqueeze(1)
        commitment_loss = torch.stack(commitment_losses).mean() if any_valid else frames.sum() * 0.0
        return NS2QuantizerOutput(
            quantized_latents=straight_through.view(batch, n_frames, self.latent_dim).transpose(1, 2),
            audio_codes=torch.stack(codes, dim=1),
            commitment_loss=commitment_loss,
        )


__all__ = ["NS2QuantizerOutput", "NS2ResidualVectorQuantizer"]
