"""NaturalSpeech 2: the latent diffusion model with its phoneme/prompt encoders and predictors.

The blocks live in their own files (one box of the paper's figure each); this file assembles
them into :class:`NS2Model`, whose methods are the steps the pipeline and the training script
call, and whose `forward` computes the training losses with teacher-forced durations and pitch.
"""

from dataclasses import dataclass
from typing import Optional, Tuple, Union

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from . import losses
from .configuration_ns2 import NS2Config
from .phoneme_encoder import PhonemeEncoder
from .prompt_encoder import PromptEncoder
from .prompt_pitch import denormalize_log_f0, normalize_log_f0, prompt_pitch_statistics
from .variance_predictors import PitchEmbedding, VariancePredictor, length_regulate
from .wavenet import PromptQueryTokens, WaveNetDenoiser


@dataclass
class NS2ModelOutput(ModelOutput):
    """Training output of :class:`NS2Model`.

    Args:
        loss: `()` the weighted sum of the five terms with the config's weights.
        data_loss: `()` masked MSE between ẑ₀ and z₀ (normalised latent space).
        score_loss: `()` Min-SNR weighted noise-space error of the score implied by ẑ₀.
        ce_rvq_loss: `()` cross-entropy of the true RVQ codes given ẑ₀ (normalised latent space).
        duration_loss: `()` masked L1 on log(d+1) per phoneme.
        pitch_loss: `()` masked L1 on log-f0 per frame (with `pitch_normalization="prompt"`: on the
            prompt-normalised log-f0, voiced frames only).
        predicted_latents: `(batch, D, F)` ẑ₀ in the codec's raw latent space, zero at padding.
        predicted_log_durations: `(batch, L)` predicted log(d+1), zero at padding.
        predicted_log_f0: `(batch, F)` predicted log-f0 (absolute, de-normalised), zero at padding.
    """

    loss: Optional[torch.Tensor] = None
    data_loss: Optional[torch.Tensor] = None
    score_loss: Optional[torch.Tensor] = None
    ce_rvq_loss: Optional[torch.Tensor] = None
    duration_loss: Optional[torch.Tensor] = None
    pitch_loss: Optional[torch.Tensor] = None
    predicted_latents: Optional[torch.Tensor] = None
    predicted_log_durations: Optional[torch.Tensor] = None
    predicted_log_f0: Optional[torch.Tensor] = None


class NS2PreTrainedModel(PreTrainedModel):
    """Weight initialisation and loading glue for the NS2 model."""

    config_class = NS2Config
    base_model_prefix = "ns2"
    main_input_name = "phoneme_ids"
    _no_split_modules = ["TransformerLayer", "WaveNetLayer"]  # the units FSDP shards (and device maps keep whole)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        """Linear and conv weights ~ N(0, 1/fan_in) (scale-preserving), biases 0; embeddings and
        query tokens ~ N(0, 1) (the `<pad>` row 0); LayerNorms identity."""
        if isinstance(module, (nn.Linear, nn.Conv1d)):
            init.kaiming_normal_(module.weight, nonlinearity="linear")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight)
            if module.padding_idx is not None and not getattr(module.weight, "_is_hf_initialized", False):
                module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, PromptQueryTokens):
            init.normal_(module.query_tokens)


class NS2Model(NS2PreTrainedModel):
    """NaturalSpeech 2: phonemes + speech prompt → codec latents by latent diffusion.

    Latents are channel-first `(batch, D, frames)`; masks are bool with True = valid. The
    denoiser works in the normalised latent space `latents * config.latent_scale`.
    """

    def __init__(self, config: NS2Config):
        super().__init__(config)
        self.phoneme_encoder = PhonemeEncoder(config)
        self.prompt_encoder = PromptEncoder(config)
        self.duration_predictor = VariancePredictor(
            config.hidden_size,
            config.predictor_layers,
            config.duration_predictor_kernel_size,
            config.predictor_attention_every,
            config.predictor_attention_heads,
            config.predictor_dropout,
        )
        self.pitch_predictor = VariancePredictor(
            config.hidden_size,
            config.predictor_layers,
            config.pitch_predictor_kernel_size,
            config.predictor_attention_every,
            config.predictor_attention_heads,
            config.predictor_dropout,
        )
        self.pitch_embedding = PitchEmbedding(
            config.hidden_size, config.pitch_bins, config.log_f0_min, config.log_f0_max
        )
        self.denoiser = WaveNetDenoiser(config)
        self.post_init()

    # --- the steps of synthesis -------------------------------------------------------------

    def normalize_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Raw codec latents → the denoiser's space: `latents * latent_scale`."""
        return latents * self.config.latent_scale

    def denormalize_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """The denoiser's space → raw codec latents: `latents / latent_scale`."""
        return latents / self.config.latent_scale

    def get_input_embeddings(self) -> nn.Embedding:
        """The phoneme embedding `(vocab_size, H)` (transformers' accessor; FSDP makes it a unit of its own)."""
        return self.phoneme_encoder.embedding

    def set_input_embeddings(self, embedding: nn.Embedding) -> None:
        self.phoneme_encoder.embedding = embedding

    def encode_phonemes(self, phoneme_ids: torch.Tensor, phoneme_mask: torch.Tensor) -> torch.Tensor:
        """`phoneme_ids (batch, L)` long, `phoneme_mask (batch, L)` → phoneme hidden `(batch, L, H)`."""
        return self.phoneme_encoder(phoneme_ids, phoneme_mask)

    def encode_prompt(self, prompt_latents: torch.Tensor, prompt_mask: torch.Tensor) -> torch.Tensor:
        """Raw codec latents of the prompt `(batch, D, P)`, `prompt_mask (batch, P)` → `(batch, P, H)`.

        Raises:
            ValueError: if an item has no valid prompt frame.
        """
        if not prompt_mask.any(dim=1).all():
            raise ValueError("every item needs at least one valid prompt frame")
        return self.prompt_encoder(self.normalize_latents(prompt_latents), prompt_mask)

    def predict_durations(
        self,
        phoneme_hidden: torch.Tensor,
        phoneme_mask: torch.Tensor,
        prompt_hidden: torch.Tensor,
        prompt_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Phoneme hidden `(batch, L, H)` + prompt → predicted log(d+1) in frames, `(batch, L)`."""
        return self.duration_predictor(phoneme_hidden, phoneme_mask, prompt_hidden, prompt_mask)

    @staticmethod
    def durations_from_log(
        log_durations: torch.Tensor, phoneme_mask: torch.Tensor, speed: float = 1.0
    ) -> torch.Tensor:
        """Integer frame durations from predicted log(d+1).

        d = round((exp(log_d) − 1) / speed), clamped at 0, with `torch.round` (half to even);
        `speed` > 1 is faster speech (fewer frames). Padded phonemes get 0. An item whose
        durations all round to 0 gets one frame on its longest predicted phoneme, so every
        utterance has at least one frame.

        Args:
            log_durations: `(batch, L)` float.
            phoneme_mask: `(batch, L)` bool.
            speed: positive speaking-rate factor.

        Returns:
            `(batch, L)` long.
        """
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        if not phoneme_mask.any(dim=1).all():
            raise ValueError("every item needs at least one valid phoneme")
        durations = torch.round(torch.expm1(log_durations) / speed).clamp(min=0).long()
        durations = durations * phoneme_mask.long()
        silent = durations.sum(dim=1) == 0
        if silent.any():
            longest = log_durations.masked_fill(~phoneme_mask, float("-inf")).argmax(dim=1)
            durations[silent, longest[silent]] = 1
        return durations

    def length_regulate(
        self, phoneme_hidden: torch.Tensor, durations: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Repeat phoneme hidden `(batch, L, H)` by `durations (batch, L)` long →
        `(frame_hidden (batch, F, H), frame_mask (batch, F))`, F = the largest total duration."""
        return length_regulate(phoneme_hidden, durations)

    def predict_pitch(
        self,
        frame_hidden: torch.Tensor,
        frame_mask: torch.Tensor,
        prompt_hidden: torch.Tensor,
        prompt_mask: torch.Tensor,
        prompt_pitch: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
    ) -> torch.Tensor:
        """Frame hidden `(batch, F, H)` + prompt → predicted log-f0 `(batch, F)`, zero at padding.

        Args:
            prompt_pitch: `(mean (batch,), std (batch,))` of the prompt's voiced log-f0
                (`ns2_hf.ns2.prompt_pitch.prompt_pitch_statistics`); required with
                `config.pitch_normalization == "prompt"`, whose predictor output is de-normalised with
                them; ignored otherwise.

        Raises:
            ValueError: if the config anchors pitch to the prompt and `prompt_pitch` is None.
        """
        predicted = self.pitch_predictor(frame_hidden, frame_mask, prompt_hidden, prompt_mask)
        if self.config.pitch_normalization != "prompt":
            return predicted
        if prompt_pitch is None:
            raise ValueError(
                "this model predicts pitch relative to the prompt (pitch_normalization='prompt'): pass prompt_pitch, "
                "the prompt's voiced log-f0 mean and std"
            )
        mean, std = (value.to(predicted.dtype) for value in prompt_pitch)
        return denormalize_log_f0(predicted, mean, std) * frame_mask.to(predicted.dtype)

    def build_condition(self, frame_hidden: torch.Tensor, log_f0: torch.Tensor) -> torch.Tensor:
        """The denoiser's frame condition c: frame hidden `(batch, F, H)` + pitch embedding of
        `log_f0 (batch, F)` → `(batch, H, F)` (the denoiser masks its padded frames)."""
        return (frame_hidden + self.pitch_embedding(log_f0)).transpose(1, 2)

    def denoise(
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
        """Predict the clean latent ẑ₀ from z_t, all in the normalised latent space.

        Args:
            noisy_latents: `(batch, D, F)` z_t.
            timesteps: `(batch,)` float t ∈ [0, 1].
            condition: `(batch, H, F)` from :meth:`build_condition`.
            frame_mask: `(batch, F)` bool.
            prompt_hidden: `(batch, P, H)` from :meth:`encode_prompt`.
            prompt_mask: `(batch, P)` bool.
            drop_prompt: `(batch,)` bool, True = that item gets the null prompt (prompt guidance's
                unconditional branch, `config.prompt_dropout`); None: every item sees its prompt.
            drop_condition: `(batch,)` bool, True = that item's condition is zero (content guidance's
                unconditional branch, `config.condition_dropout`); None: every item sees its condition.

        Returns:
            `(batch, D, F)` ẑ₀, zero at padding.
        """
        return self.denoiser(
            noisy_latents, timesteps, condition, frame_mask, prompt_hidden, prompt_mask, drop_prompt, drop_condition
        )

    # --- training -------------------------------------------------------------------------

    def _check_training_inputs(self, phoneme_mask, durations, latents, latent_mask, codes, codebooks, log_f0):
        batch, _, num_frames = latents.shape
        if latents.shape[1] != self.config.latent_dim:
            raise ValueError(f"latents have {latents.shape[1]} channels, the config says latent_dim {self.config.latent_dim}")
        if latent_mask.shape != (batch, num_frames) or log_f0.shape != (batch, num_frames):
            raise ValueError(
                f"latent_mask {tuple(latent_mask.shape)} and log_f0 {tuple(log_f0.shape)} must be (batch, frames) "
                f"= {(batch, num_frames)}"
            )
        if codes.shape[0] != batch or codes.shape[2] != num_frames or codes.shape[1] != codebooks.shape[0]:
            raise ValueError(
                f"codes {tuple(codes.shape)} must be (batch, n_q, frames) with n_q = {codebooks.shape[0]} codebooks"
            )
        if codebooks.shape[2] != self.config.latent_dim:
            raise ValueError(f"codebooks {tuple(codebooks.shape)} must be (n_q, K, latent_dim={self.config.latent_dim})")
        if durations.shape != phoneme_mask.shape:
            raise ValueError(f"durations {tuple(durations.shape)} must match phoneme_mask {tuple(phoneme_mask.shape)}")
        if durations.is_floating_point():
            raise ValueError("durations must be integer frame counts (a long tensor)")
        frame_counts = latent_mask.sum(dim=1)
        if not torch.equal(latent_mask, torch.arange(num_frames, device=latent_mask.device) < frame_counts[:, None]):
            raise ValueError("latent_mask must mark each item's valid frames first, then padding")
        duration_sums = (durations * phoneme_mask).sum(dim=1)
        if not torch.equal(duration_sums, frame_counts):
            raise ValueError(
                f"phoneme durations must sum to the number of valid latent frames per item; got duration sums "
                f"{duration_sums.tolist()} for frame counts {frame_counts.tolist()}"
            )

    @staticmethod
    def _check_prompt_pitch_inputs(log_f0, voiced, prompt_mask, prompt_log_f0, prompt_voiced):
        missing = [name for name, value in (("voiced", voiced), ("prompt_log_f0", prompt_log_f0),
                                            ("prompt_voiced", prompt_voiced)) if value is None]
        if missing:
            raise ValueError(
                f"pitch_normalization='prompt' needs {missing}: the voicing of the target frames and the prompt's "
                "log-f0 and voicing (NS2SpeechPrompter returns them when the utterances carry `voiced`)"
            )
        if voiced.shape != log_f0.shape:
            raise ValueError(f"voiced {tuple(voiced.shape)} must match log_f0 {tuple(log_f0.shape)}")
        if prompt_log_f0.shape != prompt_mask.shape or prompt_voiced.shape != prompt_mask.shape:
            raise ValueError(
                f"prompt_log_f0 {tuple(prompt_log_f0.shape)} and prompt_voiced {tuple(prompt_voiced.shape)} must match "
                f"prompt_mask {tuple(prompt_mask.shape)}"
            )

    def forward(
        self,
        phoneme_ids: torch.Tensor,
        phoneme_mask: torch.Tensor,
        durations: torch.Tensor,
        log_f0: torch.Tensor,
        latents: torch.Tensor,
        latent_mask: torch.Tensor,
        prompt_latents: torch.Tensor,
        prompt_mask: torch.Tensor,
        codes: torch.Tensor,
        codebooks: torch.Tensor,
        noise_scheduler,
        timesteps: Optional[torch.Tensor] = None,
        noise: Optional[torch.Tensor] = None,
        voiced: Optional[torch.Tensor] = None,
        prompt_log_f0: Optional[torch.Tensor] = None,
        prompt_voiced: Optional[torch.Tensor] = None,
        drop_prompt: Optional[torch.Tensor] = None,
        drop_condition: Optional[torch.Tensor] = None,
        return_dict: bool = True,
    ) -> Union[NS2ModelOutput, Tuple[torch.Tensor, ...]]:
        """Training losses with teacher-forced durations and pitch.

        Args:
            phoneme_ids: `(batch, L)` long.
            phoneme_mask: `(batch, L)` bool.
            durations: `(batch, L)` long frames per phoneme; per item they sum to its valid frames.
            log_f0: `(batch, F)` true frame log-f0.
            latents: `(batch, D, F)` raw quantized codec latents of the target.
            latent_mask: `(batch, F)` bool, valid frames first.
            prompt_latents: `(batch, D, P)` raw codec latents of the prompt.
            prompt_mask: `(batch, P)` bool.
            codes: `(batch, n_q, F)` long, the target's RVQ codes.
            codebooks: `(n_q, K, D)` the codec's codebooks.
            noise_scheduler: the owner of the VP SDE (an :class:`~ns2_hf.schedulers.NS2Scheduler`): it
                draws t, noises the latents and gives the SNR and the noise implied by ẑ₀ for the
                score loss; save it with the model so sampling uses the same SDE.
            timesteps: `(batch,)` diffusion times; default `noise_scheduler.sample_timesteps` (t ~ U(t_eps, 1)).
            noise: `(batch, D, F)` ε; default standard normal.
            voiced: `(batch, F)` bool voicing of the target frames; with `pitch_normalization="prompt"` the
                pitch loss counts only valid voiced frames (ignored otherwise).
            prompt_log_f0: `(batch, P)` log-f0 of the prompt frames (needed with `pitch_normalization="prompt"`).
            prompt_voiced: `(batch, P)` bool voicing of the prompt frames (likewise).
            drop_prompt: `(batch,)` bool, the items whose denoiser gets the null prompt; default in training
                mode: each item with probability `config.prompt_dropout` (none in eval mode or at 0).
            drop_condition: `(batch,)` bool, the items whose denoiser gets a zero frame condition; default in
                training mode: each item with probability `config.condition_dropout` (none in eval mode or at 0).
            return_dict: return an :class:`NS2ModelOutput` (else a tuple of its fields).

        Raises:
            ValueError: on shape mismatches, when durations do not sum to the valid frames, or when the
                config anchors pitch to the prompt and `voiced`, `prompt_log_f0` or `prompt_voiced` is missing.
        """
        config = self.config
        self._check_training_inputs(phoneme_mask, durations, latents, latent_mask, codes, codebooks, log_f0)
        prompt_pitch = None
        if config.pitch_normalization == "prompt":
            self._check_prompt_pitch_inputs(log_f0, voiced, prompt_mask, prompt_log_f0, prompt_voiced)
            prompt_pitch = prompt_pitch_statistics(prompt_log_f0, prompt_voiced, prompt_mask)
        batch, _, num_frames = latents.shape
        durations = durations * phoneme_mask

        phoneme_hidden = self.encode_phonemes(phoneme_ids, phoneme_mask)
        prompt_hidden = self.encode_prompt(prompt_latents, prompt_mask)

        predicted_log_durations = self.predict_durations(phoneme_hidden, phoneme_mask, prompt_hidden, prompt_mask)
        frame_hidden, _ = self.length_regulate(phoneme_hidden, durations)
        frame_hidden = nn.functional.pad(frame_hidden, (0, 0, 0, num_frames - frame_hidden.shape[1]))
        predicted_log_f0 = self.predict_pitch(frame_hidden, latent_mask, prompt_hidden, prompt_mask, prompt_pitch)
        condition = self.build_condition(frame_hidden, log_f0)

        channel_mask = latent_mask.unsqueeze(1).to(latents.dtype)
        clean_latents = self.normalize_latents(latents) * channel_mask
        if timesteps is None:
            timesteps = noise_scheduler.sample_timesteps(batch, device=latents.device)
        if noise is None:
            noise = torch.randn_like(clean_latents)
        noise = noise * channel_mask
        noisy_latents = noise_scheduler.add_noise(clean_latents, noise, timesteps)
        if drop_prompt is None and self.training and config.prompt_dropout > 0:
            drop_prompt = torch.rand(batch, device=latents.device) < config.prompt_dropout
        if drop_condition is None and self.training and config.condition_dropout > 0:
            drop_condition = torch.rand(batch, device=latents.device) < config.condition_dropout
        predicted_latents = self.denoise(
            noisy_latents, timesteps, condition, latent_mask, prompt_hidden, prompt_mask, drop_prompt, drop_condition
        )

        data_loss = losses.data_loss(predicted_latents, clean_latents, latent_mask)
        predicted_noise = noise_scheduler.noise_from_data_prediction(predicted_latents, noisy_latents, timesteps)
        score_loss = losses.score_loss(
            predicted_noise, noise, noise_scheduler.snr(timesteps), latent_mask, config.score_loss_snr_clamp
        )
        # CE-RVQ in the denoiser's normalised space: distances scale with latent_scale², so the loss
        # (and its weight λ) does not depend on the codec's latent magnitude (ours; the paper is silent).
        ce_rvq_loss = losses.ce_rvq_loss(predicted_latents, codes, self.normalize_latents(codebooks), latent_mask)
        duration_loss = losses.duration_loss(predicted_log_durations, durations, phoneme_mask)
        if prompt_pitch is None:
            pitch_loss = losses.pitch_loss(predicted_log_f0, log_f0, latent_mask)
        else:  # ours: relative to the prompt, on the frames whose f0 was measured
            pitch_loss = losses.pitch_loss(
                normalize_log_f0(predicted_log_f0, *prompt_pitch), normalize_log_f0(log_f0, *prompt_pitch),
                latent_mask & voiced.bool(),
            )
        loss = (
            config.data_loss_weight * data_loss
            + config.score_loss_weight * score_loss
            + config.ce_rvq_loss_weight * ce_rvq_loss
            + config.duration_loss_weight * duration_loss
            + config.pitch_loss_weight * pitch_loss
        )
        output = NS2ModelOutput(
            loss=loss,
            data_loss=data_loss,
            score_loss=score_loss,
            ce_rvq_loss=ce_rvq_loss,
            duration_loss=duration_loss,
            pitch_loss=pitch_loss,
            predicted_latents=self.denormalize_latents(predicted_latents),
            predicted_log_durations=predicted_log_durations,
            predicted_log_f0=predicted_log_f0,
        )
        return output if return_dict else output.to_tuple()


__all__ = ["NS2Model", "NS2ModelOutput", "NS2PreTrainedModel"]
