"""`NS2Pipeline`: text + a few seconds of a voice → speech in that voice (NaturalSpeech 2 inference).

The story of `__call__` follows the paper's figure: phonemes → phoneme encoder; prompt audio → codec
latents → prompt encoder; duration predictor → length regulator; pitch predictor → frame condition;
latent diffusion (probability-flow ODE from noise, denoiser attending to the prompt) → codec decoder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput

from ..audio.io import check_waveform, load_audio
from ..audio.silence import trim_silence
from ..codec import NS2CodecFeatureExtractor, NS2CodecModel
from ..ns2 import NS2Model
from ..schedulers import NS2Scheduler
from ..text import NS2PhonemeTokenizer
from .arguments import check_generation_arguments
from .loading import ModelLoadError, check_pipeline_folder, check_pipeline_weights, find_pipeline_folder, hub_download_options

#: Where the model that ships with the repository lives (a source checkout).
PRETRAINED_DIR = Path(__file__).resolve().parents[2] / "pretrained"
#: Name of the shipped default model, loaded by `NS2Pipeline.from_pretrained()` with no argument.
DEFAULT_MODEL = "ns2-tiny-en"

PromptAudio = Union[str, os.PathLike, np.ndarray, torch.Tensor]


@dataclass
class NS2PipelineOutput(BaseOutput):
    """Output of [`NS2Pipeline`].

    Args:
        audios: one waveform per text, each of its own length — `np.ndarray (samples,)` for
            `output_type="np"`, `torch.Tensor (samples,)` for `"pt"`, or the generated codec latents
            `torch.Tensor (latent_dim, frames)` for `"latent"`.
        sampling_rate: rate of the waveforms (the codec's).
        durations: phoneme durations in codec frames used for each text, `(num_phonemes,)` long tensors.
    """

    audios: List[Union[np.ndarray, torch.Tensor]]
    sampling_rate: int
    durations: List[torch.Tensor]


class NS2Pipeline(DiffusionPipeline):
    r"""Zero-shot text-to-speech with NaturalSpeech 2.

    Components:
        tokenizer ([`NS2PhonemeTokenizer`]): text → phoneme ids.
        model ([`NS2Model`]): phoneme/prompt encoders, duration/pitch predictors, diffusion denoiser.
        codec ([`NS2CodecModel`]): waveform ↔ quantized latents (the diffusion's data space).
        scheduler ([`NS2Scheduler`]): VP-SDE solver (Euler probability-flow ODE by default).
        feature_extractor ([`NS2CodecFeatureExtractor`]): prompt waveform → codec input.

    The prompt is loaded, downmixed to mono and resampled to the codec rate, its leading and trailing
    silence trimmed (`prompt_trim_db`), then checked: shorter than `min_prompt_seconds` (after trimming),
    silent or non-finite audio raises [`AudioInputError`]; longer than `max_prompt_seconds` is cropped
    to its first `max_prompt_seconds` (the paper prompts with 3–10 s).
    """

    model_cpu_offload_seq = "model->codec"
    min_prompt_seconds = 0.5
    max_prompt_seconds = 10.0
    prompt_trim_db = 40.0

    def __init__(
        self,
        tokenizer: NS2PhonemeTokenizer,
        model: NS2Model,
        codec: NS2CodecModel,
        scheduler: NS2Scheduler,
        feature_extractor: NS2CodecFeatureExtractor,
    ):
        super().__init__()
        self.register_modules(
            tokenizer=tokenizer, model=model, codec=codec, scheduler=scheduler, feature_extractor=feature_extractor
        )

    @property
    def sampling_rate(self) -> int:
        return int(self.codec.config.sampling_rate)

    @property
    def hop_length(self) -> int:
        return int(self.codec.config.hop_length)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Optional[Union[str, os.PathLike]] = None, **kwargs):
        """Load a pipeline folder, the shipped model's short name, or a Hub repo id.

        Args:
            pretrained_model_name_or_path: a local folder written by `save_pretrained`; the short name of
                a model in the repository's `pretrained/` folder (default: `"ns2-tiny-en"`, the shipped
                model); or a Hub repo id, fetched with `huggingface_hub.snapshot_download` (diffusers'
                own download step refuses out-of-tree component libraries) with only the JSON and safetensors
                files a pipeline reads.

        Raises:
            ModelLoadError: the name is not a folder, shipped model or fetchable repo id; a model's weights
                are not safetensors, are truncated or corrupt, miss or add keys, or hold NaN/inf (see
                `ns2_hf.pipelines.loading`).
        """
        if pretrained_model_name_or_path is None and not (PRETRAINED_DIR / DEFAULT_MODEL).is_dir():
            raise ModelLoadError(
                f"The shipped model is expected at {PRETRAINED_DIR / DEFAULT_MODEL} (a source checkout of ns2-hf)."
            )
        name = find_pipeline_folder(pretrained_model_name_or_path or DEFAULT_MODEL, PRETRAINED_DIR, **hub_download_options(kwargs))
        check_pipeline_folder(name)
        try:
            pipeline = super().from_pretrained(name, use_safetensors=True, **kwargs)
        except (OSError, ValueError) as error:
            raise ModelLoadError(f"cannot load the pipeline in {name}: {error}") from error
        check_pipeline_weights(pipeline, name)
        return pipeline

    # 1. check inputs ---------------------------------------------------------------------------
    def check_inputs(self, texts, num_inference_steps, speed, durations, pitch):
        if len(texts) == 0:
            raise ValueError("`text` is empty: give a string or a non-empty list of strings.")
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"`text` items must be strings, got {type(text).__name__}.")
        if not isinstance(num_inference_steps, int) or num_inference_steps < 2:
            raise ValueError(f"`num_inference_steps` must be an integer >= 2, got {num_inference_steps!r}.")
        if not speed > 0:
            raise ValueError(f"`speed` must be > 0, got {speed!r}.")
        for name, given in (("durations", durations), ("pitch", pitch)):
            if given is not None and len(given) != len(texts):
                raise ValueError(f"`{name}` has {len(given)} entries for {len(texts)} texts.")

    # 2. encode conditions ------------------------------------------------------------------------
    def encode_text(self, texts: List[str]):
        """Returns phoneme ids `(batch, phonemes)` and their mask (True = phoneme)."""
        encoded = self.tokenizer(texts, padding=True, return_tensors="pt")
        return encoded["input_ids"].to(self.device), encoded["attention_mask"].to(self.device).bool()

    def load_prompt(self, prompt_audio: PromptAudio, prompt_sampling_rate: Optional[int]) -> np.ndarray:
        """Reads, downmixes, resamples, trims, checks and crops the prompt. Returns `(samples,)` float32."""
        waveform = load_audio(
            prompt_audio, sampling_rate=prompt_sampling_rate, target_sampling_rate=self.sampling_rate, name="prompt_audio"
        )
        waveform = check_waveform(waveform, None, self.sampling_rate, name="prompt_audio", allow_silence=False)
        waveform, _ = trim_silence(waveform, top_db=self.prompt_trim_db)
        min_samples = int(self.min_prompt_seconds * self.sampling_rate)
        waveform = check_waveform(waveform, None, self.sampling_rate, name="prompt_audio (silence trimmed)", min_samples=min_samples)
        return waveform[: int(self.max_prompt_seconds * self.sampling_rate)]

    def encode_prompt(self, prompt_waveform: np.ndarray, batch_size: int):
        """Codec latents of the prompt through the prompt encoder.

        Returns:
            prompt_hidden `(batch, prompt_frames, hidden)` and prompt_mask `(batch, prompt_frames)`.
        """
        features = self.feature_extractor(prompt_waveform, sampling_rate=self.sampling_rate, return_tensors="pt")
        input_values = features["input_values"].to(self.device, self.codec.dtype)
        prompt_latents = self.codec.encode(input_values).quantized_latents.to(self.model.dtype)
        prompt_mask = torch.ones(prompt_latents.shape[0], prompt_latents.shape[-1], dtype=torch.bool, device=self.device)
        prompt_hidden = self.model.encode_prompt(prompt_latents, prompt_mask)
        return prompt_hidden.expand(batch_size, -1, -1), prompt_mask.expand(batch_size, -1)

    def predict_durations(self, phoneme_hidden, phoneme_mask, prompt_hidden, prompt_mask, speed, durations):
        """Phoneme durations in codec frames `(batch, phonemes)`: given ones, or the duration predictor's."""
        if durations is not None:
            given = torch.zeros(phoneme_mask.shape, dtype=torch.long, device=self.device)
            for index, item in enumerate(durations):
                item = torch.as_tensor(item, dtype=torch.long, device=self.device)
                num_phonemes = int(phoneme_mask[index].sum())
                if item.shape != (num_phonemes,) or (item < 0).any() or item.sum() == 0:
                    raise ValueError(
                        f"durations[{index}] must hold {num_phonemes} non-negative frame counts (one per phoneme, "
                        f"not all zero), got shape {tuple(item.shape)}."
                    )
                given[index, :num_phonemes] = item
            return given
        log_durations = self.model.predict_durations(phoneme_hidden, phoneme_mask, prompt_hidden, prompt_mask)
        return self.model.durations_from_log(log_durations, phoneme_mask, speed=speed)

    def predict_pitch(self, frame_hidden, frame_mask, prompt_hidden, prompt_mask, pitch):
        """Frame log-f0 `(batch, frames)`: given contours (Hz > 0, one value per frame), or the pitch predictor's."""
        if pitch is None:
            return self.model.predict_pitch(frame_hidden, frame_mask, prompt_hidden, prompt_mask)
        log_f0 = torch.zeros(frame_mask.shape, dtype=frame_hidden.dtype, device=self.device)
        for index, item in enumerate(pitch):
            item = torch.as_tensor(item, dtype=frame_hidden.dtype, device=self.device)
            num_frames = int(frame_mask[index].sum())
            if item.shape != (num_frames,) or not torch.isfinite(item).all() or (item <= 0).any():
                raise ValueError(
                    f"pitch[{index}] must hold {num_frames} positive finite f0 values in Hz (one per frame), "
                    f"got shape {tuple(item.shape)}."
                )
            log_f0[index, :num_frames] = torch.log(item)
        return log_f0

    # 3. prepare latents --------------------------------------------------------------------------
    def prepare_latents(self, frame_mask, generator, temperature):
        """Initial noise `(batch, latent_dim, frames)` from N(0, τ⁻¹ I); one generator per item keeps a batch
        equal to its items run alone."""
        batch_size, num_frames = frame_mask.shape
        generators = generator if isinstance(generator, list) else [generator] * batch_size
        if len(generators) != batch_size:
            raise ValueError(f"Got {len(generators)} generators for a batch of {batch_size}.")
        noise_std = self.scheduler.init_noise_sigma if temperature is None else float(temperature) ** -0.5
        latents = torch.zeros(batch_size, self.model.config.latent_dim, num_frames, device=self.device, dtype=self.model.dtype)
        for index, item_generator in enumerate(generators):
            item_frames = int(frame_mask[index].sum())
            noise = torch.randn(
                (self.model.config.latent_dim, item_frames), generator=item_generator, device="cpu", dtype=torch.float32
            )
            latents[index, :, :item_frames] = noise.to(self.device, self.model.dtype)
        return latents * noise_std

    # 5. decode ---------------------------------------------------------------------------------------
    def decode_latents(self, latents, frame_mask) -> List[torch.Tensor]:
        """Codec decoder on each item's valid frames, one item at a time (the decoder's convolutions would
        otherwise read the padding of shorter items). Returns waveforms `(frames * hop,)`."""
        audios = []
        for index, num_frames in enumerate(frame_mask.sum(dim=1).tolist()):
            item_latents = self.model.denormalize_latents(latents[index : index + 1, :, :num_frames])
            audio = self.codec.decode(quantized_latents=item_latents.to(self.codec.dtype)).audio_values[0]
            audios.append(audio[: num_frames * self.hop_length].float())
        return audios

    @torch.no_grad()
    def __call__(
        self,
        text: Union[str, List[str]],
        prompt_audio: PromptAudio,
        prompt_sampling_rate: Optional[int] = None,
        num_inference_steps: int = 150,
        generator: Optional[Union[torch.Generator, List[torch.Generator]]] = None,
        temperature: Optional[float] = None,
        speed: float = 1.0,
        durations: Optional[Sequence[Sequence[int]]] = None,
        pitch: Optional[Sequence[Sequence[float]]] = None,
        output_type: str = "np",
        return_dict: bool = True,
    ):
        r"""Speak `text` in the voice of `prompt_audio`.

        Args:
            text: a sentence, or a list of sentences (a batch sharing one prompt).
            prompt_audio: a few seconds of the target voice — a file path, or an array/tensor (`(samples,)`
                or `(channels, samples)`) with `prompt_sampling_rate`.
            prompt_sampling_rate: rate of an array/tensor prompt (required for those).
            num_inference_steps: ODE/SDE solver steps (paper: 150).
            generator: a `torch.Generator`, or one per text, for the initial noise (and SDE noise).
            temperature: τ of the initial noise N(0, τ⁻¹ I); default the scheduler's (paper 1.2² = 1.44).
            speed: > 1 speaks faster (predicted durations are divided by it); ignored with `durations`.
            durations: per text, one frame count per phoneme (overrides the duration predictor).
            pitch: per text, one f0 value in Hz per frame (overrides the pitch predictor; needs `durations`
                or a known frame count).
            output_type: `"np"`, `"pt"` or `"latent"` (the generated codec latents, before decoding).
            return_dict: return an [`NS2PipelineOutput`] instead of a tuple.

        Returns:
            [`NS2PipelineOutput`] (or `(audios, sampling_rate, durations)`).
        """
        check_generation_arguments(text, num_inference_steps, speed, temperature)  # same message in the CLI and demo
        texts = [text] if isinstance(text, str) else list(text)
        self.check_inputs(texts, num_inference_steps, speed, durations, pitch)
        if output_type not in ("np", "pt", "latent"):
            raise ValueError(f"`output_type` must be 'np', 'pt' or 'latent', got {output_type!r}.")
        batch_size = len(texts)

        # 2. encode conditions: phonemes, prompt, durations, pitch
        phoneme_ids, phoneme_mask = self.encode_text(texts)
        phoneme_hidden = self.model.encode_phonemes(phoneme_ids, phoneme_mask)
        prompt_waveform = self.load_prompt(prompt_audio, prompt_sampling_rate)
        prompt_hidden, prompt_mask = self.encode_prompt(prompt_waveform, batch_size)
        phoneme_durations = self.predict_durations(phoneme_hidden, phoneme_mask, prompt_hidden, prompt_mask, speed, durations)
        frame_hidden, frame_mask = self.model.length_regulate(phoneme_hidden, phoneme_durations)
        log_f0 = self.predict_pitch(frame_hidden, frame_mask, prompt_hidden, prompt_mask, pitch)
        condition = self.model.build_condition(frame_hidden, log_f0)

        # 3. prepare latents
        latents = self.prepare_latents(frame_mask, generator, temperature)
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        step_generator = generator[0] if isinstance(generator, list) else generator

        # 4. denoising loop
        latent_mask = frame_mask.unsqueeze(1).to(latents.dtype)
        for timestep in self.progress_bar(self.scheduler.timesteps):
            model_input = self.scheduler.scale_model_input(latents, timestep)
            timesteps = timestep.expand(batch_size).to(self.device, latents.dtype)
            predicted_latents = self.model.denoise(model_input, timesteps, condition, frame_mask, prompt_hidden, prompt_mask)
            latents = self.scheduler.step(predicted_latents, timestep, latents, generator=step_generator).prev_sample
            latents = latents * latent_mask

        # 5. decode
        lengths = frame_mask.sum(dim=1)
        item_durations = [phoneme_durations[index, : int(phoneme_mask[index].sum())].cpu() for index in range(batch_size)]
        if output_type == "latent":
            audios = [self.model.denormalize_latents(latents[index, :, : int(lengths[index])]) for index in range(batch_size)]
        else:
            audios = self.decode_latents(latents, frame_mask)
            if output_type == "np":
                audios = [audio.cpu().numpy() for audio in audios]
        self.maybe_free_model_hooks()

        if not return_dict:
            return audios, self.sampling_rate, item_durations
        return NS2PipelineOutput(audios=audios, sampling_rate=self.sampling_rate, durations=item_durations)


def build_untrained_pipeline(size: str = "tiny", seed: int = 0) -> NS2Pipeline:
    """An `NS2Pipeline` of randomly initialised components (`size` "tiny" or "base") — for tests,
    benchmarks, and as the stand-in when no trained model is available. Its speech is noise."""
    if size not in ("tiny", "base"):
        raise ValueError(f"size must be 'tiny' or 'base', got {size!r}")
    from ..codec import NS2CodecConfig
    from ..ns2 import NS2Config

    torch.manual_seed(seed)
    codec_config = NS2CodecConfig.tiny() if size == "tiny" else NS2CodecConfig()
    tokenizer = NS2PhonemeTokenizer()
    model_config = NS2Config.tiny() if size == "tiny" else NS2Config()
    model_config.vocab_size = len(tokenizer)
    model_config.latent_dim = codec_config.latent_dim
    return NS2Pipeline(
        tokenizer=tokenizer,
        model=NS2Model(model_config).eval(),
        codec=NS2CodecModel(codec_config).eval(),
        scheduler=NS2Scheduler(beta_min=model_config.beta_min, beta_max=model_config.beta_max),
        feature_extractor=NS2CodecFeatureExtractor(sampling_rate=codec_config.sampling_rate),
    )
