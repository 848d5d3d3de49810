"""`NS2Pipeline`: text + a few seconds of a voice → speech in that voice (NaturalSpeech 2 inference).

The story of `__call__` follows the paper's figure: phonemes → phoneme encoder; prompt audio → codec
latents → prompt encoder; duration predictor → length regulator; pitch predictor → frame condition;
latent diffusion (probability-flow ODE from noise, denoiser attending to the prompt) → codec decoder.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Union

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.utils import BaseOutput, logging

from ..audio.io import AudioInputError, check_waveform, load_audio
from ..audio.pitch import extract_pitch
from ..audio.silence import trim_silence
from ..audio.spectrum import long_term_spectrum, match_long_term_spectrum
from ..alignment import AlignmentError, NS2AlignerModel
from ..codec import NS2CodecFeatureExtractor, NS2CodecModel
from ..latent_codecs.latent_codec import NS2TransformersCodecModel, check_codec_latent_space, codec_latent_space
from ..ns2 import NS2Model
from ..ns2.prompt_pitch import prompt_pitch_statistics
from ..schedulers import NS2Scheduler, temperature_to_sigma
from ..text import NS2PhonemeTokenizer, is_phone, is_voiced
from .arguments import (
    GenerationArgumentError,
    check_generation_arguments,
    check_min_phone_frames,
    check_candidate_steps,
    check_num_candidates,
    check_pitch_register_tolerance,
    check_spectrum_matching,
)
from .loading import ModelLoadError, check_pipeline_folder, check_pipeline_weights, find_pipeline_folder, hub_download_options
from .voice import NS2Voice, codebook_probe

#: Where the models that ship with ns2-hf live: inside the installed package (a wheel carries the repository's
#: `pretrained/` folder as `ns2_hf/pretrained/`, see setup.py), else in the source checkout's `pretrained/`.
PRETRAINED_DIRS = (Path(__file__).resolve().parents[1] / "pretrained", Path(__file__).resolve().parents[2] / "pretrained")
#: Name of the shipped default model, loaded by `NS2Pipeline.from_pretrained()` with no argument.
DEFAULT_MODEL = "ns2-tiny-en"
#: Subfolder of a release folder holding the aligner (`from_pretrained` picks it up).
ALIGNER_SUBFOLDER = "aligner"

PromptAudio = Union[str, os.PathLike, np.ndarray, torch.Tensor]

logger = logging.get_logger(__name__)


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
        codec ([`NS2CodecModel`] or an [`NS2TransformersCodecModel`] over transformers' DAC, EnCodec or Mimi):
            waveform ↔ quantized latents (the diffusion's data space). Its rate is the pipeline's: prompts are
            resampled to it and outputs come at it. A codec whose latent space differs from the one the model
            was trained on (`model.config.codec_latent_space`) is refused with a `ValueError`.
        scheduler ([`NS2Scheduler`]): VP-SDE solver (Euler probability-flow ODE by default).
        feature_extractor ([`NS2CodecFeatureExtractor`]): prompt waveform → codec input.
        aligner ([`NS2AlignerModel`], optional): scores candidates (`num_candidates`); a release folder's `aligner/`
            subfolder is loaded with it.

    The prompt is loaded, downmixed to mono and resampled to the codec rate, its leading and trailing
    silence trimmed (`prompt_trim_db`), then checked: shorter than `min_prompt_seconds` (after trimming),
    silent or non-finite audio raises [`AudioInputError`]; longer than `max_prompt_seconds` is cropped
    to its first `max_prompt_seconds` (the paper prompts with 3–10 s).
    """

    model_cpu_offload_seq = "model->codec"
    _optional_components = ["aligner"]
    _callback_tensor_inputs = ["latents", "predicted_latents", "condition", "prompt_hidden"]
    min_prompt_seconds = 0.5
    max_prompt_seconds = 10.0
    prompt_trim_db = 40.0

    def __init__(
        self,
        tokenizer: NS2PhonemeTokenizer,
        model: NS2Model,
        codec: Union[NS2CodecModel, NS2TransformersCodecModel],
        scheduler: NS2Scheduler,
        feature_extractor: NS2CodecFeatureExtractor,
        aligner: Optional[NS2AlignerModel] = None,
    ):
        super().__init__()
        if model is not None and codec is not None:
            check_codec_latent_space(model.config.codec_latent_space, codec)
        self.register_modules(
            tokenizer=tokenizer, model=model, codec=codec, scheduler=scheduler, feature_extractor=feature_extractor,
            aligner=aligner,
        )
        self._interrupt = False
        self._num_timesteps = 0

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
                a shipped model (default: `"ns2-tiny-en"`, found in the installed package or the source
                checkout's `pretrained/` folder); or a Hub repo id, fetched with
                `huggingface_hub.snapshot_download` (diffusers' own download step refuses out-of-tree
                component libraries) with only the JSON and safetensors files a pipeline reads.
                The folder's `aligner/` subfolder, if any, becomes the `aligner` component unless one is passed.

        Raises:
            ModelLoadError: the name is not a folder, shipped model or fetchable repo id; a model's weights
                are not safetensors, are truncated or corrupt, miss or add keys, or hold NaN/inf (see
                `ns2_hf.pipelines.loading`).
        """
        if pretrained_model_name_or_path is None and not any((folder / DEFAULT_MODEL).is_dir() for folder in PRETRAINED_DIRS):
            raise ModelLoadError(
                f"The shipped model {DEFAULT_MODEL} is expected in {' or '.join(map(str, PRETRAINED_DIRS))} (an "
                "installed ns2-hf wheel, or a source checkout)."
            )
        name = find_pipeline_folder(pretrained_model_name_or_path or DEFAULT_MODEL, PRETRAINED_DIRS,
                                    **hub_download_options(kwargs))
        check_pipeline_folder(name)
        try:
            pipeline = super().from_pretrained(name, use_safetensors=True, **kwargs)
        except (OSError, ValueError) as error:
            raise ModelLoadError(f"cannot load the pipeline in {name}: {error}") from error
        check_pipeline_weights(pipeline, name)
        aligner_folder = Path(name) / ALIGNER_SUBFOLDER
        if pipeline.aligner is None and aligner_folder.is_dir():
            pipeline.register_modules(aligner=NS2AlignerModel.from_pretrained(aligner_folder).eval())
        return pipeline

    @property
    def num_timesteps(self) -> int:
        """Solver steps of the current (or last) run, for callbacks (diffusers' convention)."""
        return self._num_timesteps

    @property
    def interrupt(self) -> bool:
        """Set `pipe._interrupt = True` in `callback_on_step_end` to stop the denoising loop (diffusers' convention)."""
        return self._interrupt

    # 1. check inputs ---------------------------------------------------------------------------
    def check_inputs(
        self,
        texts,
        prompt_audio,
        voice,
        num_inference_steps,
        num_waveforms_per_prompt,
        generator,
        temperature,
        speed,
        durations,
        pitch,
        latents,
        output_type,
        callback_on_step_end_tensor_inputs,
        prompt_guidance_scale=1.0,
        min_phone_frames=None,
        pitch_register_tolerance=None,
        content_guidance_scale=1.0,
        spectrum_matching=None,
        num_candidates=None,
        candidate_steps=None,
    ):
        """Raise `ValueError`/`TypeError` naming the first argument that cannot work (before any model runs)."""
        if len(texts) == 0:
            raise ValueError("`text` is empty: give a string or a non-empty list of strings.")
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"`text` items must be strings, got {type(text).__name__}.")
        if (prompt_audio is None) == (voice is None):
            raise ValueError("Give exactly one of `prompt_audio` (audio of the voice) and `voice` (from `encode_voice`).")
        for name, given in (("prompt_audio", prompt_audio), ("voice", voice)):
            if isinstance(given, (list, tuple)) and len(given) != len(texts):
                raise ValueError(f"`{name}` is a list of {len(given)} for {len(texts)} texts: give one per text, or one for all.")
        if voice is not None:
            for item in voice if isinstance(voice, (list, tuple)) else [voice]:
                if not isinstance(item, NS2Voice):
                    raise TypeError(f"`voice` must be an NS2Voice (from `encode_voice` or `NS2Voice.load`), got {type(item).__name__}.")
        if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, int) or num_inference_steps < 2:
            raise ValueError(f"`num_inference_steps` must be an integer >= 2, got {num_inference_steps!r}.")
        if isinstance(num_waveforms_per_prompt, bool) or not isinstance(num_waveforms_per_prompt, int) or num_waveforms_per_prompt < 1:
            raise ValueError(f"`num_waveforms_per_prompt` must be an integer >= 1, got {num_waveforms_per_prompt!r}.")
        batch_size = len(texts) * num_waveforms_per_prompt
        if isinstance(generator, list) and len(generator) != batch_size:
            raise ValueError(
                f"Got {len(generator)} generators for {len(texts)} texts × {num_waveforms_per_prompt} waveforms = "
                f"{batch_size} waveforms: give one generator per waveform, or a single one."
            )
        if temperature is not None:
            temperature_to_sigma(temperature)  # raises ValueError naming `temperature` unless finite and > 0
        if not speed > 0:
            raise ValueError(f"`speed` must be > 0, got {speed!r}.")
        if min_phone_frames is not None:
            check_min_phone_frames(min_phone_frames)
        check_pitch_register_tolerance(pitch_register_tolerance)
        check_spectrum_matching(spectrum_matching)
        check_num_candidates(num_candidates)
        check_candidate_steps(candidate_steps)
        for name, given in (("durations", durations), ("pitch", pitch)):
            if given is not None and len(given) != len(texts):
                raise ValueError(f"`{name}` has {len(given)} entries for {len(texts)} texts.")
        if latents is not None:
            if not isinstance(latents, torch.Tensor) or not latents.is_floating_point():
                raise TypeError(f"`latents` must be a floating-point torch.Tensor, got {type(latents).__name__}.")
            latent_dim = self.model.config.latent_dim
            if latents.ndim != 3 or latents.shape[:2] != (batch_size, latent_dim):
                raise ValueError(
                    f"`latents` must have shape (texts × num_waveforms_per_prompt, latent_dim, frames) = "
                    f"({batch_size}, {latent_dim}, frames), got {tuple(latents.shape)}."
                )
            if not torch.isfinite(latents).all():
                raise ValueError("`latents` contain NaN or infinite values.")
            if num_candidates is not None and num_candidates > 1:
                raise ValueError("`latents` fix each waveform's initial noise, so its candidates would be one: use "
                                 "num_candidates=1 with `latents`.")
        if output_type not in ("np", "pt", "latent"):
            raise ValueError(f"`output_type` must be 'np', 'pt' or 'latent', got {output_type!r}.")
        unknown = [name for name in callback_on_step_end_tensor_inputs if name not in self._callback_tensor_inputs]
        if unknown:
            raise ValueError(
                f"`callback_on_step_end_tensor_inputs` has {unknown}; the callback can get {self._callback_tensor_inputs}."
            )
        if prompt_guidance_scale != 1.0 and not self.model.config.prompt_dropout > 0:
            raise GenerationArgumentError(
                f"`prompt_guidance_scale` {prompt_guidance_scale} needs a model trained with prompt dropout "
                "(NS2Config.prompt_dropout > 0), which learnt the null prompt; this one was not: use 1."
            )
        if content_guidance_scale != 1.0 and not self.model.config.condition_dropout > 0:
            raise GenerationArgumentError(
                f"`content_guidance_scale` {content_guidance_scale} needs a model trained with condition dropout "
                "(NS2Config.condition_dropout > 0), which learnt the null content; this one was not: use 1."
            )

    def check_aligner(self, purpose: str) -> None:
        """Raise `GenerationArgumentError` unless the pipeline has an aligner at the codec's rate and hop (`purpose`:
        what it is needed for, named in the message)."""
        if self.aligner is None:
            raise GenerationArgumentError(
                f"this pipeline has no aligner for {purpose}: load a release folder with an `aligner/` subfolder, or "
                "pass `aligner=NS2AlignerModel.from_pretrained(...)` (see training/train_aligner.py)."
            )
        if self.aligner.config.hop_length != self.hop_length or self.aligner.config.sampling_rate != self.sampling_rate:
            raise GenerationArgumentError(
                f"the aligner works at {self.aligner.config.sampling_rate} Hz / hop {self.aligner.config.hop_length}, "
                f"the codec at {self.sampling_rate} Hz / hop {self.hop_length}: its frames would not fit the latents."
            )

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

    @torch.no_grad()
    def encode_voice(self, prompt_audio: PromptAudio, prompt_sampling_rate: Optional[int] = None) -> NS2Voice:
        """Encode a voice once: [`load_prompt`] then the codec encoder. Save the result with `voice.save(path)`
        and pass it back as `pipe(text, voice=...)` (the same audio as `prompt_audio=`, without re-reading it).

        Args:
            prompt_audio: a file path, or an array/tensor (`(samples,)` or `(channels, samples)`).
            prompt_sampling_rate: rate of an array/tensor prompt.

        Returns:
            [`NS2Voice`] holding the prompt's quantized codec latents `(latent_dim, frames)`.
        """
        return self._encode_waveform(self.load_prompt(prompt_audio, prompt_sampling_rate))

    def _encode_waveform(self, waveform: np.ndarray) -> NS2Voice:
        """A prompt waveform `(samples,)` at the codec rate, as [`load_prompt`] returns it → [`NS2Voice`] with the
        prompt's codec latents, its voiced log-f0 statistics (measured with the Praat tracker the training
        data is prepared with, on the codec's frames) and its long-term average spectrum."""
        features = self.feature_extractor(waveform, sampling_rate=self.sampling_rate, return_tensors="pt")
        log_f0, voiced = extract_pitch(waveform, self.sampling_rate, self.hop_length)
        mean, std = (None, None)
        if voiced.any():
            statistics = prompt_pitch_statistics(torch.from_numpy(log_f0)[None], torch.from_numpy(voiced)[None])
            mean, std = (float(value[0]) for value in statistics)
        with self.in_float32(self.codec):
            input_values = features["input_values"].to(self.device, torch.float32)
            prompt_latents = self.codec.encode(input_values).quantized_latents[0]
            return NS2Voice(prompt_latents, self.sampling_rate, self.hop_length, codebook_probe(self.codec), mean, std,
                            long_term_spectrum(torch.from_numpy(waveform), self.sampling_rate))

    @contextlib.contextmanager
    def in_float32(self, module: torch.nn.Module):
        """Run `module` (the codec, the aligner) in float32 inside this block, whatever the pipeline's dtype (as
        diffusers upcasts SDXL's VAE): both are small, and in bf16 the codec's decoder alone moves the output by 0.16
        log-mel L1 on the shipped model (the model in bf16: 0.05)."""
        dtype = module.dtype
        if dtype == torch.float32:
            yield
            return
        module.to(dtype=torch.float32)
        try:
            yield
        finally:
            module.to(dtype=dtype)

    def encode_prompt(self, prompt: Union[np.ndarray, NS2Voice, Sequence[NS2Voice]], batch_size: int):
        """Codec latents of the prompt through the prompt encoder.

        Args:
            prompt: one prompt for the whole batch — a waveform `(samples,)` at the codec rate (from
                [`load_prompt`]) or an [`NS2Voice`] — or a list of `batch_size` voices, one per item
                (different lengths are padded and masked).
            batch_size: items in the batch.

        Returns:
            prompt_hidden `(batch, prompt_frames, hidden)` in the model's dtype and prompt_mask
            `(batch, prompt_frames)`.
        """
        if isinstance(prompt, np.ndarray):
            prompt = self._encode_waveform(prompt)
        voices = [prompt] if isinstance(prompt, NS2Voice) else list(prompt)
        if len(voices) not in (1, batch_size):
            raise ValueError(f"Got {len(voices)} prompts for a batch of {batch_size}.")
        if all(voice is voices[0] for voice in voices):  # one voice for all: encode it once
            voices = voices[:1]
        for voice in voices:
            voice.check_codec(self.codec)
        num_frames = max(voice.prompt_latents.shape[1] for voice in voices)
        prompt_latents = torch.zeros(len(voices), self.model.config.latent_dim, num_frames)
        prompt_mask = torch.zeros(len(voices), num_frames, dtype=torch.bool)
        for index, voice in enumerate(voices):
            prompt_latents[index, :, : voice.prompt_latents.shape[1]] = voice.prompt_latents
            prompt_mask[index, : voice.prompt_latents.shape[1]] = True
        prompt_mask = prompt_mask.to(self.device)
        prompt_hidden = self.model.encode_prompt(prompt_latents.to(self.device, self.model.dtype), prompt_mask)
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
        return self.model.durations_from_log(log_durations.float(), phoneme_mask, speed=speed)

    def predict_pitch(self, frame_hidden, frame_mask, prompt_hidden, prompt_mask, pitch, voices=None):
        """Frame log-f0 `(batch, frames)`: given contours (Hz > 0, one value per frame), or the pitch predictor's —
        de-normalised with each item's voice's pitch statistics (`voices`, one [`NS2Voice`] per item) when the model
        anchors pitch to the prompt (`pitch_normalization="prompt"`)."""
        if pitch is None:
            prompt_pitch = self.prompt_pitch(voices) if self.model.config.pitch_normalization == "prompt" else None
            return self.model.predict_pitch(frame_hidden, frame_mask, prompt_hidden, prompt_mask, prompt_pitch)
        log_f0 = torch.zeros(frame_mask.shape, dtype=torch.float32, device=self.device)
        for index, item in enumerate(pitch):
            item = torch.as_tensor(item, dtype=torch.float32, device=self.device)
            num_frames = int(frame_mask[index].sum())
            if item.shape != (num_frames,) or not torch.isfinite(item).all() or (item <= 0).any():
                raise ValueError(
                    f"pitch[{index}] must hold {num_frames} positive finite f0 values in Hz (one per frame), "
                    f"got shape {tuple(item.shape)}."
                )
            log_f0[index, :num_frames] = torch.log(item)
        return log_f0

    def prompt_pitch(self, voices: Sequence[NS2Voice]):
        """`(mean (batch,), std (batch,))` of each voice's voiced log-f0, for a model with prompt-anchored pitch.

        Raises:
            AudioInputError: a voice has no pitch statistics (its prompt has no voiced frame, or it was saved
                before voices recorded them: encode the prompt again).
        """
        if voices is None or any(voice.log_f0_mean is None for voice in voices):
            raise AudioInputError(
                "this model places the output's pitch in the prompt's range, but the prompt has no voiced frames "
                "(or the voice was saved without pitch statistics: encode the prompt again with `encode_voice`)."
            )
        mean = torch.tensor([voice.log_f0_mean for voice in voices], device=self.device)
        std = torch.tensor([voice.log_f0_std for voice in voices], device=self.device)
        return mean, std

    def match_prompt_pitch(self, log_f0, frame_mask, voices: Sequence[NS2Voice], tolerance: float = 0.0) -> torch.Tensor:
        """Each item's frame log-f0 `(batch, frames)` shifted, as little as needed, so that its mean over the item's
        frames lies within `log(1 + tolerance)` of its voice's voiced mean log-f0 (`NS2Voice.log_f0_mean`): the
        predicted contour's shape in the prompt's register (ours). `tolerance` 0 puts the mean on the prompt's.
        A model with prompt-anchored pitch is there already and a voice without pitch statistics keeps its contour;
        padding stays zero."""
        if self.model.config.pitch_normalization == "prompt":
            return log_f0
        mask = frame_mask.to(log_f0.dtype)
        current = (log_f0 * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        target = torch.tensor([math.nan if voice.log_f0_mean is None else voice.log_f0_mean for voice in voices],
                              dtype=log_f0.dtype, device=log_f0.device)
        distance = torch.where(torch.isfinite(target), target - current, torch.zeros_like(current))
        shift = distance.sign() * (distance.abs() - math.log1p(tolerance)).clamp(min=0)
        return (log_f0 + shift[:, None]) * mask

    # 3. prepare latents --------------------------------------------------------------------------
    def randn_per_item(self, frame_mask, generator) -> torch.Tensor:
        """Standard normal noise `(batch, latent_dim, frames)` float32, zero at padding: each item's noise is
        drawn (on the CPU) for its own frames from its own generator, so a batch equals its items run alone.

        Args:
            frame_mask: `(batch, frames)` bool.
            generator: one `torch.Generator` per item, or one (or None) drawn from item after item.
        """
        batch_size, num_frames = frame_mask.shape
        generators = generator if isinstance(generator, list) else [generator] * batch_size
        noise = torch.zeros(batch_size, self.model.config.latent_dim, num_frames)
        for index, (item_generator, item_frames) in enumerate(zip(generators, frame_mask.sum(dim=1).tolist())):
            noise[index, :, :item_frames] = torch.randn((self.model.config.latent_dim, item_frames), generator=item_generator)
        return noise.to(self.device)

    def prepare_latents(self, frame_mask, generator, temperature, latents=None):
        """Initial noise `(batch, latent_dim, frames)` float32 from N(0, τ⁻¹ I): `latents` (standard normal,
        as diffusers pipelines take them) or fresh [`randn_per_item`], times the scheduler's σ for τ."""
        noise_std = self.scheduler.init_noise_sigma if temperature is None else temperature_to_sigma(temperature)
        if latents is None:
            latents = self.randn_per_item(frame_mask, generator)
        else:
            if latents.shape[-1] != frame_mask.shape[1]:
                raise ValueError(
                    f"`latents` have {latents.shape[-1]} frames, the durations give {frame_mask.shape[1]} (the longest "
                    "item's total); pass `durations=` to fix the length, or take the frame count from a run's `durations`."
                )
            latents = latents.to(self.device, torch.float32) * frame_mask.unsqueeze(1)
        return latents * noise_std

    # 4. denoise --------------------------------------------------------------------------------------
    def denoise_latents(
        self,
        latents,
        condition,
        frame_mask,
        prompt_hidden,
        prompt_mask,
        num_inference_steps,
        generator=None,
        callback_on_step_end=None,
        callback_on_step_end_tensor_inputs=("latents",),
        prompt_guidance_scale=1.0,
        content_guidance_scale=1.0,
    ) -> torch.Tensor:
        """The solver loop from z₁ to ẑ₀: the scheduler's steps with the denoiser's clean-latent predictions.

        Latents stay in float32 (the solver's arithmetic); the denoiser runs in the model's dtype.

        Args:
            latents: `(batch, latent_dim, frames)` z at t = 1, float32.
            condition: `(batch, hidden, frames)` from `model.build_condition`.
            frame_mask: `(batch, frames)` bool.
            prompt_hidden, prompt_mask: from [`encode_prompt`].
            num_inference_steps: model calls.
            generator: per-item generators (or one) for the noise of a stochastic scheduler.
            callback_on_step_end: `callback(pipe, step_index, timestep, callback_kwargs) -> dict` after each step;
                the returned tensors replace the loop's; setting `pipe._interrupt = True` stops the loop.
            callback_on_step_end_tensor_inputs: names from `_callback_tensor_inputs` put in `callback_kwargs`.
            prompt_guidance_scale: w of prompt guidance, ẑ₀ = ẑ₀(∅) + w·(ẑ₀(prompt) − ẑ₀(∅)) with ∅ the null prompt
                (one batched denoiser call of twice the batch per step); 1 = the denoiser as it is, one call.
            content_guidance_scale: w of content guidance, the same with ∅ the null content (a zero frame condition).

        Returns:
            `(batch, latent_dim, frames)` float32 latents (normalised space), zero at padding.
        """
        self._interrupt = False
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        self._num_timesteps = len(self.scheduler.timesteps)
        latent_mask = frame_mask.unsqueeze(1).to(torch.float32)
        batch_size = latents.shape[0]
        stochastic = getattr(self.scheduler, "stochastic", False)
        for step_index, timestep in enumerate(self.progress_bar(self.scheduler.timesteps)):
            if self.interrupt:
                break
            model_input = self.scheduler.scale_model_input(latents, timestep).to(self.model.dtype)
            timesteps = timestep.expand(batch_size).to(self.device, torch.float32)
            predicted_latents = self.guided_denoise(
                model_input, timesteps, condition, frame_mask, prompt_hidden, prompt_mask, prompt_guidance_scale,
                content_guidance_scale,
            )
            step_kwargs = {"variance_noise": self.randn_per_item(frame_mask, generator)} if stochastic else {}
            latents = self.scheduler.step(predicted_latents, timestep, latents, **step_kwargs).prev_sample * latent_mask
            if callback_on_step_end is not None:
                step_tensors = {"latents": latents, "predicted_latents": predicted_latents, "condition": condition,
                                "prompt_hidden": prompt_hidden}
                callback_kwargs = {name: step_tensors[name] for name in callback_on_step_end_tensor_inputs}
                callback_outputs = callback_on_step_end(self, step_index, timestep, callback_kwargs) or {}
                latents = callback_outputs.pop("latents", latents)
                condition = callback_outputs.pop("condition", condition)
                prompt_hidden = callback_outputs.pop("prompt_hidden", prompt_hidden)
        return latents

    def guided_denoise(
        self, model_input, timesteps, condition, frame_mask, prompt_hidden, prompt_mask, prompt_guidance_scale,
        content_guidance_scale=1.0,
    ):
        """ẑ₀ `(batch, latent_dim, frames)` float32 of one solver step, with classifier-free guidance (ours, the paper has
        none) when a scale w is not 1: the conditional prediction and one with each guided condition made null — the
        prompt (prompt guidance) or the frame condition (content guidance) — in one call on the stacked batch, then
        ẑ₀ = ẑ₀(∅) + w·(ẑ₀ − ẑ₀(∅)) for one guidance, ẑ₀ + Σ (w − 1)·(ẑ₀ − ẑ₀(∅)) for both."""
        guidances = [(scale, drop) for scale, drop in ((prompt_guidance_scale, "drop_prompt"), (content_guidance_scale, "drop_condition"))
                     if scale != 1.0]
        if not guidances:
            return self.model.denoise(model_input, timesteps, condition, frame_mask, prompt_hidden, prompt_mask).float()
        batch_size = model_input.shape[0]
        branch = torch.arange((1 + len(guidances)) * batch_size, device=model_input.device) // batch_size
        drops = {drop: branch == index for index, (_, drop) in enumerate(guidances, start=1)}
        inputs = (model_input, timesteps, condition, frame_mask, prompt_hidden, prompt_mask)
        conditional, *nulls = self.model.denoise(
            *(torch.cat([tensor] * (1 + len(guidances))) for tensor in inputs), **drops
        ).float().chunk(1 + len(guidances))
        if len(guidances) == 1:
            return nulls[0] + guidances[0][0] * (conditional - nulls[0])
        return conditional + sum((scale - 1.0) * (conditional - null) for (scale, _), null in zip(guidances, nulls))

    # 5. decode ---------------------------------------------------------------------------------------
    def uses_harmonic_phase(self, harmonic_phase: Optional[bool]) -> bool:
        """Whether to decode with the codec's harmonic phase: `harmonic_phase`, or (None) whether the codec has the
        Fourier decoder, the only one that has it.

        Raises:
            GenerationArgumentError: `harmonic_phase=True` with a codec that has no Fourier decoder.
        """
        supported = getattr(getattr(self.codec, "config", None), "decoder_type", None) == "fourier"
        if harmonic_phase and not supported:
            raise GenerationArgumentError("harmonic_phase=True needs a codec with the Fourier decoder (NS2CodecModel "
                                          "with decoder_type='fourier'); pass harmonic_phase=False or None.")
        return supported if harmonic_phase is None else bool(harmonic_phase)

    def harmonic_phase_contour(self, log_f0, phoneme_ids, durations):
        """The pitch the codec's harmonic phase follows (`NS2CodecModel.decode(f0=, voiced=)`): `f0 (batch, frames)`
        in Hz, from the frame log-f0 `(batch, frames)` the denoiser was conditioned on, and `voiced (batch, frames)`
        bool, where the frame's phoneme is a voiced phone (`ns2_hf.text.is_voiced`; `phoneme_ids` and `durations`
        `(batch, phonemes)`)."""
        frame_voiced, _ = self.model.length_regulate(self.token_mask(phoneme_ids, is_voiced).float()[..., None], durations)
        return log_f0.float().exp(), frame_voiced[..., 0] > 0.5

    def token_mask(self, phoneme_ids: torch.Tensor, predicate: Callable[[str], bool]) -> torch.Tensor:
        """`predicate` (e.g. `ns2_hf.text.is_phone`, `is_voiced`) of each id's token: bool, the shape of `phoneme_ids`."""
        vocabulary = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
        return torch.tensor([predicate(token) for token in vocabulary], device=phoneme_ids.device)[phoneme_ids]

    def decode_latents(self, latents, frame_mask, f0=None, voiced=None) -> List[torch.Tensor]:
        """Codec decoder on each item's valid frames, one item at a time (the decoder's convolutions would
        otherwise read the padding of shorter items), in float32 ([`in_float32`]); with `f0` and `voiced`
        `(batch, frames)` ([`harmonic_phase_contour`]), voiced frames take the codec's harmonic phase. Returns
        float32 waveforms `(frames * hop,)`."""
        audios = []
        with self.in_float32(self.codec):
            for index, num_frames in enumerate(frame_mask.sum(dim=1).tolist()):
                item_latents = self.model.denormalize_latents(latents[index : index + 1, :, :num_frames].float())
                if f0 is None:
                    audio = self.codec.decode(quantized_latents=item_latents).audio_values[0]
                else:
                    audio = self.codec.decode(quantized_latents=item_latents, f0=f0[index : index + 1, :num_frames],
                                              voiced=voiced[index : index + 1, :num_frames]).audio_values[0]
                audios.append(audio[: num_frames * self.hop_length])
        return audios

    # 6. match the prompt's spectrum -------------------------------------------------------------------
    def match_prompt_spectrum(self, audios: List[torch.Tensor], voices: Sequence[NS2Voice], strength: float) -> List[torch.Tensor]:
        """Each waveform `(samples,)` equalised `strength` of the way towards its voice's long-term average spectrum
        (`NS2Voice.long_term_spectrum`, `ns2_hf.audio.spectrum`; ours): the recording's channel and the voice's
        spectral tilt, which the codec and denoiser do not reproduce. A voice saved before voices recorded the
        spectrum leaves its waveform as decoded, with a warning."""
        matched = []
        for audio, voice in zip(audios, voices):
            if voice.long_term_spectrum is None:
                logger.warning("the voice has no long-term spectrum (saved by an older ns2-hf): its output is not "
                               "equalised; encode the prompt again with `encode_voice` to match its spectrum.")
                matched.append(audio)
            else:
                matched.append(match_long_term_spectrum(audio, voice.long_term_spectrum, self.sampling_rate, strength))
        return matched

    # 6. keep the best candidate -----------------------------------------------------------------------
    def best_candidates(self, audios: List[torch.Tensor], phoneme_ids, phoneme_mask, num_candidates: int) -> List[int]:
        """Index, in the batch, of the candidate to keep of each run of `num_candidates` consecutive waveforms
        `(samples,)` of the same text: the one the aligner finds says its phonemes `(batch, phonemes)` most clearly
        (lowest `NS2AlignerModel.text_mismatch`; ours, after the CLVP re-ranking of Tortoise TTS). A waveform with
        fewer frames than its text has phonemes cannot be scored: its run keeps its first candidate. The aligner runs in
        float32 ([`in_float32`])."""
        keep = []
        with self.in_float32(self.aligner):
            for first in range(0, len(audios), num_candidates):
                ids = phoneme_ids[first : first + 1, : int(phoneme_mask[first].sum())].to(self.aligner.device)
                try:
                    mismatch = [self.aligner.text_mismatch(ids, audio.float().to(self.aligner.device))
                                for audio in audios[first : first + num_candidates]]
                except AlignmentError:  # fewer frames than phonemes: the run's candidates have one length
                    mismatch = [0.0]
                keep.append(first + int(np.argmin(mismatch)))
        return keep

    @torch.no_grad()
    def __call__(
        self,
        text: Union[str, List[str]],
        prompt_audio: Optional[Union[PromptAudio, List[PromptAudio]]] = None,
        prompt_sampling_rate: Optional[int] = None,
        voice: Optional[Union[NS2Voice, List[NS2Voice]]] = None,
        num_inference_steps: int = 150,
        num_waveforms_per_prompt: int = 1,
        generator: Optional[Union[torch.Generator, List[torch.Generator]]] = None,
        latents: Optional[torch.Tensor] = None,
        temperature: Optional[float] = None,
        speed: float = 1.0,
        durations: Optional[Sequence[Sequence[int]]] = None,
        pitch: Optional[Sequence[Sequence[float]]] = None,
        harmonic_phase: Optional[bool] = None,
        match_prompt_pitch: bool = False,
        pitch_register_tolerance: Optional[float] = None,
        prompt_guidance_scale: float = 1.0,
        content_guidance_scale: float = 1.0,
        min_phone_frames: Optional[int] = None,
        spectrum_matching: Optional[float] = None,
        num_candidates: Optional[int] = None,
        candidate_steps: Optional[int] = None,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end: Optional[Union[Callable, PipelineCallback, MultiPipelineCallbacks]] = None,
        callback_on_step_end_tensor_inputs: List[str] = ["latents"],  # noqa: B006 (diffusers' signature)
    ):
        r"""Speak `text` in the voice of `prompt_audio` (or of an encoded `voice`).

        Args:
            text: a sentence, or a list of sentences (a batch).
            prompt_audio: a few seconds of the target voice — a file path, or an array/tensor (`(samples,)`
                or `(channels, samples)`) with `prompt_sampling_rate` — shared by all texts, or a list of
                prompts, one per text.
            prompt_sampling_rate: rate of array/tensor prompts (required for those).
            voice: instead of `prompt_audio`: an [`NS2Voice`] from [`encode_voice`] / `NS2Voice.load`, or a list
                of them, one per text.
            num_inference_steps: solver steps = denoiser calls (paper: 150 Euler steps; a few-step scheduler
                such as `NS2DPMSolverMultistepScheduler` needs about 10).
            num_waveforms_per_prompt: waveforms per text, in order text 0 × n, text 1 × n, ...
            generator: a `torch.Generator`, or one per waveform (`len(text) × num_waveforms_per_prompt`), for the
                initial noise (and the noise of a stochastic scheduler); item i with `generator[i]` is what that
                text alone with that generator gives.
            latents: standard normal initial noise `(waveforms, latent_dim, frames)` (scaled by τ^(−½) here), with
                frames = the longest waveform's total duration; frames past a shorter item's length are ignored.
            temperature: τ of the initial noise N(0, τ⁻¹ I), a finite number > 0; default the scheduler's
                (paper 1.2² = 1.44).
            speed: > 1 speaks faster (predicted durations are divided by it); ignored with `durations`.
            durations: per text, one frame count per phoneme (overrides the duration predictor).
            pitch: per text, one f0 value in Hz per frame (overrides the pitch predictor; needs `durations`
                or a known frame count).
            harmonic_phase: decode the voiced phonemes' frames with the phase of a harmonic excitation at the
                frame pitch (predicted or given) instead of the codec decoder's own phases, which print its 80 Hz
                frame grid and lose low voices' pitch (ours; `NS2CodecModel.decode`). None (default): on when the
                codec has the Fourier decoder.
            match_prompt_pitch: shift the predicted pitch contour onto the prompt's register (its mean onto the
                prompt's voiced mean log-f0; [`match_prompt_pitch`]), for a model that predicts absolute pitch, as the
                shipped one does: the same as `pitch_register_tolerance=0`. Ignored with `pitch`.
            pitch_register_tolerance: move the predicted pitch contour, only as far as needed, so that its mean f0
                lies within this fraction of the prompt's voiced mean f0 (0.1: between ÷1.1 and ×1.1; ours;
                [`match_prompt_pitch`]); `math.inf` leaves it as predicted. None (default): the model's
                `NS2Config.pitch_register_tolerance` (None: as predicted). Ignored with `pitch`.
            prompt_guidance_scale: w of prompt guidance (classifier-free guidance on the speech prompt, ours):
                ẑ₀ = ẑ₀(∅) + w·(ẑ₀(prompt) − ẑ₀(∅)) at every step, ∅ the null prompt; > 1 pushes the output towards
                the prompt's voice; each step then runs the denoiser on twice the batch. Needs a model trained with `prompt_dropout`
                ([`NS2Config`]); 1 (default) is the plain denoiser.
            content_guidance_scale: w of content guidance (classifier-free guidance on the frame condition — phonemes
                and pitch —, ours): the same with ∅ a zero condition; > 1 pushes the output towards what is said.
                Needs a model trained with `condition_dropout` ([`NS2Config`]); 1 (default) is the plain denoiser.
                With both guidances, ẑ₀ + Σ (w − 1)·(ẑ₀ − ẑ₀(∅)) on three times the batch.
            min_phone_frames: give every phone at least this many frames (12.5 ms each with the shipped codec; the
                utterance gets longer), after the duration predictor and `speed` (ours). None (default): the model's
                `NS2Config.min_phone_frames` (the shipped model: 6, chosen on the tuning list — WER 0.225 → 0.173,
                and 0.219 → 0.165 on held-out sentences, 0.242 → 0.157 with real LibriVox prompts; 3 seeds,
                `training/README.md`); 1 keeps the predicted durations. Ignored with `durations`.
            spectrum_matching: equalise each output so that its long-term average spectrum moves this far, from 0
                (off) to 1, towards the prompt's, within ±6 dB per mel band ([`match_prompt_spectrum`]; ours): the
                recording's channel and the voice's spectral tilt. None (default): the model's
                `NS2Config.spectrum_matching`. Not applied to `output_type="latent"`.
            num_candidates: draw this many samples of each waveform (each from its own initial noise, drawn one after
                the other from the waveform's generator) and keep the one the pipeline's `aligner` finds says the text
                most clearly ([`best_candidates`]; ours): fewer misread words, at this many times the denoising and
                decoding (a draft per extra candidate with `candidate_steps`). Needs the aligner (a release folder's `aligner/` subfolder). None (default): the model's
                `NS2Config.num_candidates`, or 1 with `latents` (which fix the sample); 1 draws one sample.
            candidate_steps: with `num_candidates` > 1, choose among the candidates on drafts of this many solver steps
                (each candidate's sample from its noise with fewer steps of the same solver), then sample only the
                chosen noise with `num_inference_steps` (ours): the same choice most of the time at a fraction of the
                cost (`training/README.md`). Meant for a deterministic solver (the ODE): with a stochastic one a draft
                and the full run from one noise part ways. A value >= `num_inference_steps` samples every candidate in
                full. None (default): the model's `NS2Config.candidate_steps` (None: every candidate in full).
            output_type: `"np"`, `"pt"` or `"latent"` (the generated codec latents, before decoding).
            return_dict: return an [`NS2PipelineOutput`] instead of a tuple.
            callback_on_step_end: called after each denoising step as
                `callback(pipe, step_index, timestep, callback_kwargs)`; it returns a dict whose tensors replace the
                loop's (e.g. edited `latents`), and can stop the run with `pipe._interrupt = True` (the latents so far
                are decoded). A diffusers `PipelineCallback` works too. With `num_candidates` > 1 its tensors hold every
                candidate (`waveforms × num_candidates` rows, each waveform's candidates in a row); with drafts
                (`candidate_steps`) it sees the chosen candidates' full run only (`waveforms` rows).
            callback_on_step_end_tensor_inputs: which of `"latents"`, `"predicted_latents"` (ẑ₀), `"condition"`,
                `"prompt_hidden"` go into `callback_kwargs`.

        Returns:
            [`NS2PipelineOutput`] (or `(audios, sampling_rate, durations)`), one entry per waveform.
        """
        check_generation_arguments(text, num_inference_steps, speed, temperature,  # same message in the CLI and demo
                                   prompt_guidance_scale=prompt_guidance_scale, content_guidance_scale=content_guidance_scale)
        texts = [text] if isinstance(text, str) else list(text)
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        self.check_inputs(
            texts, prompt_audio, voice, num_inference_steps, num_waveforms_per_prompt, generator, temperature, speed,
            durations, pitch, latents, output_type, callback_on_step_end_tensor_inputs, prompt_guidance_scale,
            min_phone_frames, pitch_register_tolerance, content_guidance_scale, spectrum_matching, num_candidates,
            candidate_steps,
        )
        harmonic = self.uses_harmonic_phase(harmonic_phase)
        if num_candidates is None:  # given `latents` fix the one sample
            num_candidates = 1 if latents is not None else self.model.config.num_candidates
        if num_candidates > 1:
            self.check_aligner("choosing among candidates (`num_candidates`)")
        if candidate_steps is None:
            candidate_steps = self.model.config.candidate_steps
        drafts = num_candidates > 1 and candidate_steps is not None and candidate_steps < num_inference_steps
        if min_phone_frames is None:
            min_phone_frames = self.model.config.min_phone_frames
        if spectrum_matching is None:
            spectrum_matching = self.model.config.spectrum_matching
        if match_prompt_pitch:
            pitch_register_tolerance = 0.0
        elif pitch_register_tolerance is None:
            pitch_register_tolerance = self.model.config.pitch_register_tolerance

        # 2. encode conditions: voices (each distinct prompt once), phonemes, prompt, durations, pitch; every
        # waveform num_candidates times in a row, each candidate's noise drawn after the previous one's
        voices = self._voices_per_text(texts, prompt_audio, prompt_sampling_rate, voice)
        texts, voices, durations, pitch = (
            None if items is None else [item for item in items for _ in range(num_waveforms_per_prompt * num_candidates)]
            for items in (texts, voices, durations, pitch)
        )
        if isinstance(generator, list):
            generator = [item for item in generator for _ in range(num_candidates)]
        batch_size = len(texts)
        phoneme_ids, phoneme_mask = self.encode_text(texts)
        phoneme_hidden = self.model.encode_phonemes(phoneme_ids, phoneme_mask)
        prompt_hidden, prompt_mask = self.encode_prompt(voices, batch_size)
        phoneme_durations = self.predict_durations(phoneme_hidden, phoneme_mask, prompt_hidden, prompt_mask, speed, durations)
        if durations is None and min_phone_frames > 1:
            phone = self.token_mask(phoneme_ids, is_phone)
            phoneme_durations = torch.where(phone, phoneme_durations.clamp(min=min_phone_frames), phoneme_durations)
        frame_hidden, frame_mask = self.model.length_regulate(phoneme_hidden, phoneme_durations)
        log_f0 = self.predict_pitch(frame_hidden, frame_mask, prompt_hidden, prompt_mask, pitch, voices)
        if pitch_register_tolerance is not None and pitch is None:
            log_f0 = self.match_prompt_pitch(log_f0, frame_mask, voices, pitch_register_tolerance)
        condition = self.model.build_condition(frame_hidden, log_f0)

        # 3. prepare latents
        latents = self.prepare_latents(frame_mask, generator, temperature, latents)
        decoded = output_type != "latent" or num_candidates > 1  # the pitch the harmonic phase follows is needed
        f0, voiced = self.harmonic_phase_contour(log_f0, phoneme_ids, phoneme_durations) if harmonic and decoded else (None, None)

        # 3b. with drafts (`candidate_steps`), keep each waveform's best candidate now: its noise alone goes on
        keep = list(range(batch_size))
        if drafts:
            draft_latents = self.denoise_latents(
                latents, condition, frame_mask, prompt_hidden, prompt_mask, candidate_steps, generator,
                prompt_guidance_scale=prompt_guidance_scale, content_guidance_scale=content_guidance_scale,
            )
            keep = self.best_candidates(self.decode_latents(draft_latents, frame_mask, f0, voiced), phoneme_ids,
                                        phoneme_mask, num_candidates)
            latents, condition, frame_mask, prompt_hidden, prompt_mask, f0, voiced = (
                None if tensor is None else tensor[keep]
                for tensor in (latents, condition, frame_mask, prompt_hidden, prompt_mask, f0, voiced)
            )
            if isinstance(generator, list):
                generator = [generator[index] for index in keep]

        # 4. denoising loop
        latents = self.denoise_latents(
            latents, condition, frame_mask, prompt_hidden, prompt_mask, num_inference_steps, generator,
            callback_on_step_end, callback_on_step_end_tensor_inputs, prompt_guidance_scale, content_guidance_scale,
        )

        # 5. decode; 6. keep each waveform's best candidate (without drafts)
        rows = list(range(len(keep)))  # of the latents just sampled
        if output_type != "latent" or (num_candidates > 1 and not drafts):
            audios = self.decode_latents(latents, frame_mask, f0, voiced)
            if num_candidates > 1 and not drafts:
                keep = rows = self.best_candidates(audios, phoneme_ids, phoneme_mask, num_candidates)
                audios = [audios[row] for row in rows]
        item_durations = [phoneme_durations[index, : int(phoneme_mask[index].sum())].cpu() for index in keep]
        if output_type == "latent":
            lengths = frame_mask.sum(dim=1)
            audios = [self.model.denormalize_latents(latents[row, :, : int(lengths[row])]) for row in rows]
        else:
            if spectrum_matching > 0:
                audios = self.match_prompt_spectrum(audios, [voices[index] for index in keep], spectrum_matching)
            if output_type == "np":
                audios = [audio.cpu().numpy() for audio in audios]
        self.maybe_free_model_hooks()

        if not return_dict:
            return audios, self.sampling_rate, item_durations
        return NS2PipelineOutput(audios=audios, sampling_rate=self.sampling_rate, durations=item_durations)

    def _voices_per_text(self, texts, prompt_audio, prompt_sampling_rate, voice) -> List[NS2Voice]:
        """One [`NS2Voice`] per text; a prompt shared by all texts is encoded once (the same object)."""
        if voice is not None:
            return list(voice) if isinstance(voice, (list, tuple)) else [voice] * len(texts)
        if isinstance(prompt_audio, (list, tuple)):
            return [self.encode_voice(item, prompt_sampling_rate) for item in prompt_audio]
        return [self.encode_voice(prompt_audio, prompt_sampling_rate)] * len(texts)


def register_with_diffusers() -> None:
    """Make `diffusers.DiffusionPipeline.from_pretrained(folder)` load NS2 pipeline folders (run when this module
    is imported, e.g. by `from ns2_hf import NS2Pipeline`).

    diffusers finds a folder's pipeline class as the attribute of its own module named by `_class_name` in
    `model_index.json`, and has no registry for pipelines defined outside it (transformers' Auto* classes have
    `register`, which `ns2_hf` uses for its tokenizer); so the class is bound there under its own name.
    """
    import diffusers

    setattr(diffusers, NS2Pipeline.__name__, NS2Pipeline)


register_with_diffusers()


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
    model = NS2Model(model_config).eval()  # drawn before the codec: the seed's weights stay what they were
    codec = NS2CodecModel(codec_config).eval()
    model.config.codec_latent_space = codec_latent_space(codec)
    return NS2Pipeline(
        tokenizer=tokenizer,
        model=model,
        codec=codec,
        scheduler=NS2Scheduler(),
        feature_extractor=NS2CodecFeatureExtractor(sampling_rate=codec_config.sampling_rate),
    )
