"""Configuration of the NaturalSpeech 2 latent diffusion model (everything but the codec)."""

import math
from typing import Optional

from transformers import PreTrainedConfig

from .prompt_pitch import PITCH_NORMALIZATIONS


#: Config keys of older folders that now belong to the scheduler (`NS2Scheduler`).
LEGACY_SDE_KEYS = ("beta_min", "beta_max", "t_eps")


class NS2Config(PreTrainedConfig):
    r"""Sizes and training constants of :class:`~ns2_hf.ns2.NS2Model`.

    The defaults are the paper's `base` model (NaturalSpeech 2, arXiv 2304.09116, Table 8);
    :meth:`tiny` gives a CPU-fast model for tests. Sampling rate and hop length are not here:
    they belong to the codec config, and the model only sees codec frames. Nor is the VP SDE (β,
    the training time floor): it belongs to the scheduler, which training passes to
    :meth:`NS2Model.forward`.

    Args:
        vocab_size: number of phoneme token ids (the tokenizer's vocabulary size).
        pad_token_id: id of `<pad>`; its embedding is zero and never trained.
        latent_dim: channels D of the codec latent `(batch, D, frames)` the diffusion generates.
        hidden_size: width H shared by the encoders, the predictors and the WaveNet.
        num_attention_heads: heads of every attention layer in the phoneme and prompt encoders.
        phoneme_encoder_layers: Transformer layers of the phoneme encoder.
        prompt_encoder_layers: Transformer layers of the prompt encoder (same layer as the phoneme encoder).
        encoder_ffn_filter_size: channels of the conv feed-forward inside each Transformer layer.
        encoder_ffn_kernel_size: kernel of that conv feed-forward.
        encoder_dropout: dropout of the phoneme and prompt encoders.
        predictor_layers: conv layers (ReLU + LayerNorm) of the duration and of the pitch predictor.
        predictor_attention_every: a cross-attention to the prompt follows every this many convs.
        predictor_attention_heads: heads of those cross-attentions.
        predictor_dropout: dropout of the predictors.
        duration_predictor_kernel_size: conv kernel of the duration predictor.
        pitch_predictor_kernel_size: conv kernel of the pitch predictor.
        pitch_bins: the pitch embedding quantizes log-f0 into this many bins, each a learned vector
            (FastSpeech 2 style; our choice, the paper does not say). Bin 0 holds everything at or
            below `log_f0_min`, including unvoiced frames stored as log-f0 0.
        log_f0_min, log_f0_max: range of log-f0 (natural log of Hz) spread evenly over the bins.
        pitch_normalization: None (the paper): the pitch predictor regresses absolute log-f0 on every
            frame. `"prompt"` (ours, see `ns2_hf.ns2.prompt_pitch`): it regresses log-f0 normalised by
            the prompt's voiced mean and std, the pitch loss counts voiced frames only, and inference
            de-normalises with the prompt's statistics, so the output's pitch follows the prompt's range.
            Training then needs the `voiced` flags (the speech prompter passes them on) and inference
            the prompt's pitch (the pipeline measures it).
        wavenet_layers: residual layers of the WaveNet denoiser.
        wavenet_kernel_size: kernel of its dilated convs.
        wavenet_dilation_cycle: layer i uses dilation `2 ** (i % wavenet_dilation_cycle)`.
        wavenet_filter_size: channels of the dilated conv before the tanh·sigmoid gate (the gate
            halves them); 1024 for hidden 512 reproduces the paper's parameter count.
        wavenet_dropout: dropout inside the WaveNet layers.
        num_query_tokens: m learned query tokens that summarise the prompt for the denoiser.
        wavenet_attention_heads: heads of the query-token and FiLM attentions.
        film_every: the WaveNet hidden attends to the query tokens and gets a FiLM scale/shift
            every this many layers (layers 0, film_every, 2·film_every, ...).
        prompt_dropout: share of training items whose denoiser is not shown the prompt (ours; the paper
            does not drop it): its query tokens then attend to nothing and stay the learned queries,
            the *null prompt*. A model trained with it can be sampled with prompt guidance
            (`NS2Pipeline(prompt_guidance_scale=w)`: ẑ₀ = ẑ₀(∅) + w·(ẑ₀(prompt) − ẑ₀(∅)), classifier-free
            guidance on the speech prompt). The duration and pitch predictors always see the prompt.
        condition_dropout: share of training items whose denoiser is not shown the frame condition c
            (ours; the paper does not drop it): c is zero on every frame, the *null content* — the
            denoiser still sees the frames' number, the diffusion time and the prompt. A model trained
            with it can be sampled with content guidance (`NS2Pipeline(content_guidance_scale=w)`:
            ẑ₀ = ẑ₀(∅) + w·(ẑ₀(c) − ẑ₀(∅)), classifier-free guidance on what is said).
        latent_scale: the denoiser works on `latents * latent_scale` (data normalisation; the
            training script sets it from data so normalised latents have unit variance).
        score_loss_snr_clamp: the score loss is the noise-space error ‖ε̂ − ε‖² weighted by
            min(SNR, γ) / SNR with SNR = α²/σ² and γ this value (Min-SNR weighting): equal to
            min(SNR, γ)·‖ẑ₀ − z₀‖², finite as t → 0 where the raw noise-space error blows up.
        data_loss_weight, score_loss_weight, ce_rvq_loss_weight, duration_loss_weight,
        pitch_loss_weight: weights of the loss terms in the total loss (paper: 1, 1, 0.1, 1, 1).
        min_phone_frames: the least frames `NS2Pipeline` gives a phone by default (its `min_phone_frames`): a
            release setting, chosen on a tuning list like the sampling temperature, not a training one. 1 keeps
            the duration predictor's durations (the paper).
        pitch_register_tolerance: `NS2Pipeline`'s default `pitch_register_tolerance` (ours, a release setting like
            `min_phone_frames`): the predicted pitch contour is moved, only as far as needed, so that its mean f0
            lies within this fraction of the prompt's voiced mean f0 (0.1: between ÷1.1 and ×1.1). None: the
            contour as predicted (the paper). Only for a model that predicts absolute pitch.
        spectrum_matching: `NS2Pipeline`'s default `spectrum_matching` (ours, a release setting like
            `min_phone_frames`): how far, from 0 (off, the paper) to 1, the output's long-term average spectrum is
            equalised towards the prompt's (`ns2_hf.audio.spectrum`).
        num_candidates: `NS2Pipeline`'s default `num_candidates` (ours, a release setting like `min_phone_frames`):
            how many samples are drawn per waveform, of which the pipeline's aligner keeps the one that says the text
            most clearly. 1: one sample (the paper).
        candidate_steps: `NS2Pipeline`'s default `candidate_steps` (ours, a release setting like `num_candidates`): the
            aligner chooses among the candidates on drafts of this many solver steps, and only the chosen one is
            sampled in full. None: every candidate is sampled in full.
        codec_latent_space: the latent space of the codec the model was trained on
            (`ns2_hf.latent_codecs.codec_latent_space(codec)`: the codec config's `model_type` and `latent_space()`);
            `NS2Pipeline` refuses a codec with another. None for models saved before it was recorded.
    """

    model_type = "ns2"

    def __init__(
        self,
        vocab_size: int = 256,
        pad_token_id: int = 0,
        latent_dim: int = 256,
        hidden_size: int = 512,
        num_attention_heads: int = 8,
        phoneme_encoder_layers: int = 6,
        prompt_encoder_layers: int = 6,
        encoder_ffn_filter_size: int = 2048,
        encoder_ffn_kernel_size: int = 9,
        encoder_dropout: float = 0.2,
        predictor_layers: int = 30,
        predictor_attention_every: int = 3,
        predictor_attention_heads: int = 8,
        predictor_dropout: float = 0.5,
        duration_predictor_kernel_size: int = 3,
        pitch_predictor_kernel_size: int = 5,
        pitch_bins: int = 256,
        log_f0_min: float = math.log(50.0),
        log_f0_max: float = math.log(1100.0),
        pitch_normalization: Optional[str] = None,
        wavenet_layers: int = 40,
        wavenet_kernel_size: int = 3,
        wavenet_dilation_cycle: int = 2,
        wavenet_filter_size: int = 1024,
        wavenet_dropout: float = 0.2,
        num_query_tokens: int = 32,
        wavenet_attention_heads: int = 8,
        film_every: int = 3,
        prompt_dropout: float = 0.0,
        condition_dropout: float = 0.0,
        latent_scale: float = 1.0,
        score_loss_snr_clamp: float = 5.0,
        data_loss_weight: float = 1.0,
        score_loss_weight: float = 1.0,
        ce_rvq_loss_weight: float = 0.1,
        duration_loss_weight: float = 1.0,
        pitch_loss_weight: float = 1.0,
        min_phone_frames: int = 1,
        pitch_register_tolerance: Optional[float] = None,
        spectrum_matching: float = 0.0,
        num_candidates: int = 1,
        candidate_steps: Optional[int] = None,
        codec_latent_space: Optional[dict] = None,
        **kwargs,
    ):
        if hidden_size % num_attention_heads or hidden_size % predictor_attention_heads:
            raise ValueError(f"hidden_size {hidden_size} must be divisible by every attention head count")
        if hidden_size % wavenet_attention_heads:
            raise ValueError(f"hidden_size {hidden_size} must be divisible by wavenet_attention_heads")
        if wavenet_filter_size % 2:
            raise ValueError(f"wavenet_filter_size must be even (the gate halves it), got {wavenet_filter_size}")
        if latent_scale <= 0:
            raise ValueError(f"latent_scale must be positive, got {latent_scale}")
        if pitch_normalization not in PITCH_NORMALIZATIONS:
            raise ValueError(f"pitch_normalization must be one of {PITCH_NORMALIZATIONS}, got {pitch_normalization!r}")
        if not 0.0 <= prompt_dropout < 1.0:
            raise ValueError(f"prompt_dropout must be in [0, 1), got {prompt_dropout}")
        if not 0.0 <= condition_dropout < 1.0:
            raise ValueError(f"condition_dropout must be in [0, 1), got {condition_dropout}")
        if isinstance(min_phone_frames, bool) or not isinstance(min_phone_frames, int) or min_phone_frames < 1:
            raise ValueError(f"min_phone_frames must be an integer >= 1, got {min_phone_frames!r}")
        if pitch_register_tolerance is not None and not (
            isinstance(pitch_register_tolerance, (int, float)) and not isinstance(pitch_register_tolerance, bool)
            and 0 <= pitch_register_tolerance < float("inf")
        ):
            raise ValueError(f"pitch_register_tolerance must be None or a finite number >= 0, got {pitch_register_tolerance!r}")
        if isinstance(spectrum_matching, bool) or not isinstance(spectrum_matching, (int, float)) or not 0 <= spectrum_matching <= 1:
            raise ValueError(f"spectrum_matching must be a number from 0 to 1, got {spectrum_matching!r}")
        if isinstance(num_candidates, bool) or not isinstance(num_candidates, int) or num_candidates < 1:
            raise ValueError(f"num_candidates must be an integer >= 1, got {num_candidates!r}")
        if candidate_steps is not None and (isinstance(candidate_steps, bool) or not isinstance(candidate_steps, int)
                                            or candidate_steps < 2):
            raise ValueError(f"candidate_steps must be None or an integer >= 2, got {candidate_steps!r}")
        if log_f0_max <= log_f0_min:
            raise ValueError(f"log_f0_max ({log_f0_max}) must exceed log_f0_min ({log_f0_min})")
        self.vocab_size = vocab_size
        self.pad_token_id = pad_token_id
        self.latent_dim = latent_dim
        self.hidden_size = hidden_size
        self.num_attention_heads = num_attention_heads
        self.phoneme_encoder_layers = phoneme_encoder_layers
        self.prompt_encoder_layers = prompt_encoder_layers
        self.encoder_ffn_filter_size = encoder_ffn_filter_size
        self.encoder_ffn_kernel_size = encoder_ffn_kernel_size
        self.encoder_dropout = encoder_dropout
        self.predictor_layers = predictor_layers
        self.predictor_attention_every = predictor_attention_every
        self.predictor_attention_heads = predictor_attention_heads
        self.predictor_dropout = predictor_dropout
        self.duration_predictor_kernel_size = duration_predictor_kernel_size
        self.pitch_predictor_kernel_size = pitch_predictor_kernel_size
        self.pitch_bins = pitch_bins
        self.log_f0_min = log_f0_min
        self.log_f0_max = log_f0_max
        self.pitch_normalization = pitch_normalization
        self.wavenet_layers = wavenet_layers
        self.wavenet_kernel_size = wavenet_kernel_size
        self.wavenet_dilation_cycle = wavenet_dilation_cycle
        self.wavenet_filter_size = wavenet_filter_size
        self.wavenet_dropout = wavenet_dropout
        self.num_query_tokens = num_query_tokens
        self.wavenet_attention_heads = wavenet_attention_heads
        self.film_every = film_every
        self.prompt_dropout = prompt_dropout
        self.condition_dropout = condition_dropout
        self.latent_scale = latent_scale
        self.score_loss_snr_clamp = score_loss_snr_clamp
        self.data_loss_weight = data_loss_weight
        self.score_loss_weight = score_loss_weight
        self.ce_rvq_loss_weight = ce_rvq_loss_weight
        self.duration_loss_weight = duration_loss_weight
        self.pitch_loss_weight = pitch_loss_weight
        self.min_phone_frames = min_phone_frames
        self.pitch_register_tolerance = pitch_register_tolerance
        self.spectrum_matching = spectrum_matching
        self.num_candidates = num_candidates
        self.candidate_steps = candidate_steps
        self.codec_latent_space = codec_latent_space
        # folders saved before the scheduler owned the VP SDE carry its β and t_eps here; the saved
        # scheduler holds the same values, so they are dropped rather than kept as a second copy
        for key in LEGACY_SDE_KEYS:
            kwargs.pop(key, None)
        super().__init__(**kwargs)

    @classmethod
    def tiny(cls, **kwargs) -> "NS2Config":
        """A CPU-fast configuration for tests (latent_dim 32 matches the codec's tiny config)."""
        sizes = dict(
            vocab_size=64,
            latent_dim=32,
            hidden_size=32,
            num_attention_heads=2,
            phoneme_encoder_layers=2,
            prompt_encoder_layers=2,
            encoder_ffn_filter_size=64,
            encoder_ffn_kernel_size=3,
            encoder_dropout=0.1,
            predictor_layers=3,
            predictor_attention_every=3,
            predictor_attention_heads=2,
            predictor_dropout=0.1,
            pitch_bins=32,
            wavenet_layers=4,
            wavenet_filter_size=64,
            wavenet_dropout=0.1,
            num_query_tokens=4,
            wavenet_attention_heads=2,
            film_every=2,
        )
        sizes.update(kwargs)
        return cls(**sizes)


__all__ = ["NS2Config"]
