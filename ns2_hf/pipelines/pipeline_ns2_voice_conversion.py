"""`NS2VoiceConversionPipeline`: someone's speech, re-spoken in another voice (NaturalSpeech 2, §5.3).

The paper's recipe: encode the source speech to codec latents z₀, carry them *forward* along the
probability-flow ODE to an informative z_s, then solve the ODE back to t = 0 with the target
speaker's prompt, keeping the source's phonemes, durations and pitch. Here:

1. source phonemes: a transcript given by the caller, or (ours) the offline ASR's transcript
   (`ns2_hf.metrics.asr.transcribe`, Whisper tiny.en) when none is given → the tokenizer's phonemes;
2. source durations: the built-in aligner (`NS2AlignerModel.align`, forward-sum + MAS) on the
   source audio, summing exactly to its codec frame count; with `min_phone_frames` > 1 (ours; the
   enhancement default) phones shorter than that are lengthened with frames from the longest tokens,
   the length kept, and the source's latents and pitch stretched with them ([`lengthen_short_phones`]);
3. source pitch: parselmouth on the source at the codec hop (`extract_pitch`); for the target
   it is moved into the prompt's range by adding the difference of the two voiced medians in
   log-f0 (the contour keeps its shape; ours — the paper does not say how);
4. forward ODE from the source latents with the *source* as prompt and the source pitch, for
   `round(strength · (steps − 1))` steps (`strength` 1 = all the way to t = 1); or, with
   `inversion="noise"` (ours, the enhancement default), the VP marginal at that time with fresh noise;
5. reverse ODE from there to t = 0 with the *target* prompt and the moved pitch;
6. codec decoder.

The aligner ships in the release folder's `aligner/` subfolder (loaded by `from_pretrained` when
present) or is passed as the `aligner` component.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
import torch

from ..audio.io import check_waveform, load_audio
from ..audio.pitch import extract_pitch
from ..text import is_phone
from .arguments import GenerationArgumentError, check_min_phone_frames
from .pipeline_ns2 import NS2Pipeline, NS2PipelineOutput, PromptAudio

#: How the source reaches t_s: the paper's forward ODE, or fresh noise at the scheduler's temperature.
INVERSIONS = ("ode", "noise")


def lengthen_short_phones(durations: np.ndarray, is_phone: np.ndarray, min_frames: int) -> Tuple[np.ndarray, np.ndarray]:
    """Every phone at least `min_frames` long, the total kept, and where each new frame reads the source (ours).

    A phone below `min_frames` takes frames one at a time from the longest token (a pause or a long phone) that
    still has more than `min_frames`; when none has, it stays shorter. The tiny model renders phones of one or
    two frames (12–25 ms, common in natural speech) poorly: with the aligner's durations of a clean recording it
    reads 0.45 WER where its own predicted durations read 0.28 (`benchmarks/eval_ns2_modes.py enhance --bounds`).

    Args:
        durations: `(tokens,)` int frames per token (the aligner's), summing to the source's frame count.
        is_phone: `(tokens,)` bool, False for word boundaries, punctuation and special tokens (never lengthened).
        min_frames: the floor; 1 leaves the durations as they are.

    Returns:
        `(durations (tokens,), frame_map (frames,))`: the new durations, and for each of the (unchanged number of)
        frames the source frame it shows — each token's source frames stretched or squeezed over its new ones.
    """
    old = np.asarray(durations, dtype=np.int64)
    new = old.copy()
    for index in np.flatnonzero(is_phone & (old < min_frames)):
        while new[index] < min_frames:
            donor = int(np.argmax(new))
            if new[donor] <= min_frames:
                break
            new[donor] -= 1
            new[index] += 1
    starts = np.concatenate([[0], np.cumsum(old)[:-1]])
    frame_map = np.concatenate([start + (np.arange(count) + 0.5) * length // max(count, 1)
                                for start, length, count in zip(starts, old, new)]).astype(np.int64)
    return new, np.minimum(frame_map, max(int(old.sum()) - 1, 0))


@dataclass
class NS2VoiceConversionPipelineOutput(NS2PipelineOutput):
    """Output of [`NS2VoiceConversionPipeline`] and [`NS2SpeechEnhancementPipeline`].

    Args:
        audios: one waveform `(samples,)` (`np.ndarray` or `torch.Tensor`), or the codec latents
            `(latent_dim, frames)` for `output_type="latent"`; as long as the source.
        sampling_rate: the codec's rate.
        durations: the source's phoneme durations in codec frames, `(num_phonemes,)` long.
        transcripts: the text whose phonemes were used (the caller's, or the ASR's).
        pitch: the f0 contour in Hz given to the reverse ODE, `(frames,)` float32.
    """

    transcripts: List[str] = None
    pitch: List[np.ndarray] = None


class NS2VoiceConversionPipeline(NS2Pipeline):
    r"""Zero-shot voice conversion with NaturalSpeech 2: source speech + a target voice prompt →
    the source's words, timing and melody in the target voice.

    Components: those of [`NS2Pipeline`], whose optional `aligner` ([`NS2AlignerModel`]) is required here, for
    the source's phoneme durations. Build it from a loaded TTS pipeline with
    `NS2VoiceConversionPipeline.from_pipe(pipe)` (`aligner=...` if it has none), or load a release folder (its
    `aligner/` subfolder is picked up).
    """

    #: Praat's voicing threshold for the source's pitch (`extract_pitch`): its default for clean speech.
    source_voicing_threshold = 0.45
    #: Longest source accepted, in seconds (one item is converted at a time; memory grows with it).
    max_source_seconds = 30.0

    # 1. check inputs -----------------------------------------------------------------------------
    def check_conversion_inputs(self, strength: float, num_inference_steps: int, transcript: Optional[str], inversion: str,
                                min_phone_frames: int = 1):
        check_min_phone_frames(min_phone_frames)
        if inversion not in INVERSIONS:
            raise GenerationArgumentError(f"`inversion` must be one of {INVERSIONS}, got {inversion!r}.")
        if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, int) or num_inference_steps < 2:
            raise GenerationArgumentError(f"`num_inference_steps` must be an integer >= 2, got {num_inference_steps!r}.")
        if not 0.0 < strength <= 1.0:
            raise GenerationArgumentError(f"`strength` (how far the forward ODE carries the source, t_s) must be in (0, 1], got {strength!r}.")
        if transcript is not None and (not isinstance(transcript, str) or not transcript.strip()):
            raise GenerationArgumentError("`transcript` must be a non-empty string (or None to transcribe the source with the ASR).")
        self.check_aligner("the source's phoneme durations")

    # 2. the source: audio, transcript, phonemes, durations, pitch, latents ------------------------
    def load_source(self, source_audio: PromptAudio, source_sampling_rate: Optional[int], name: str = "source_audio") -> np.ndarray:
        """Reads, downmixes, resamples and checks the source (not trimmed: the output keeps its timing).
        Returns `(samples,)` float32 at the codec rate."""
        waveform = load_audio(source_audio, sampling_rate=source_sampling_rate, target_sampling_rate=self.sampling_rate, name=name)
        min_samples = int(self.min_prompt_seconds * self.sampling_rate)
        waveform = check_waveform(waveform, None, self.sampling_rate, name=name, min_samples=min_samples, allow_silence=False)
        max_samples = int(self.max_source_seconds * self.sampling_rate)
        if waveform.shape[0] > max_samples:
            raise GenerationArgumentError(
                f"{name} is {waveform.shape[0] / self.sampling_rate:.1f} s long; at most {self.max_source_seconds:.0f} s "
                "is converted at once: cut it into sentences."
            )
        return waveform

    def transcribe_source(self, source_waveform: np.ndarray) -> str:
        """The offline ASR's transcript of the source (Whisper tiny.en, the `eval` extra)."""
        try:
            from ..metrics.asr import transcribe
        except ImportError as error:  # pragma: no cover - depends on the installed extras
            raise GenerationArgumentError("no `transcript` given and the offline ASR is not installed (pip install 'ns2-hf[eval]').") from error
        text = transcribe(source_waveform, sampling_rate=self.sampling_rate)
        if not text.strip():
            raise GenerationArgumentError("the ASR heard no words in the source; pass its `transcript`.")
        return text

    def align_source(self, phoneme_ids: torch.Tensor, source_waveform: np.ndarray) -> torch.Tensor:
        """Phoneme durations `(1, phonemes)` long from the aligner (in float32, whatever the pipeline's dtype), summing
        to the source's codec frames."""
        waveform = torch.from_numpy(source_waveform).to(self.aligner.device)
        with self.in_float32(self.aligner):
            return self.aligner.align(phoneme_ids.to(self.aligner.device), waveform=waveform).to(self.device)

    def lengthen_phones(self, phoneme_ids: torch.Tensor, durations: torch.Tensor, min_phone_frames: int):
        """[`lengthen_short_phones`] on the source's durations `(1, phonemes)`: returns the new durations `(1, phonemes)`
        and the frame map `(frames,)` long that stretches the source's latents and pitch with them."""
        is_phone_token = self.token_mask(phoneme_ids, is_phone)[0].cpu().numpy()
        lengthened, frame_map = lengthen_short_phones(durations[0].cpu().numpy(), is_phone_token, min_phone_frames)
        return torch.from_numpy(lengthened)[None].to(durations.device, durations.dtype), torch.from_numpy(frame_map)

    def source_pitch(self, source_waveform: np.ndarray, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
        """Source log-f0 and voicing per codec frame, each `(num_frames,)`, tracked with
        `source_voicing_threshold`."""
        return extract_pitch(source_waveform, self.sampling_rate, self.hop_length, num_frames=num_frames,
                             voicing_threshold=self.source_voicing_threshold)

    def move_pitch(self, source_log_f0: np.ndarray, source_voiced: np.ndarray, prompt_waveform: np.ndarray) -> np.ndarray:
        """The source contour moved into the prompt's range: `+ median(prompt voiced log-f0) −
        median(source voiced log-f0)`. Unchanged when either has no voiced frame. `(frames,)` log-f0."""
        prompt_log_f0, prompt_voiced = extract_pitch(prompt_waveform, self.sampling_rate, self.hop_length)
        if not source_voiced.any() or not prompt_voiced.any():
            return source_log_f0
        return source_log_f0 + float(np.median(prompt_log_f0[prompt_voiced]) - np.median(source_log_f0[source_voiced]))

    def encode_source(self, source_waveform: np.ndarray) -> torch.Tensor:
        """Normalised codec latents of the source, `(1, latent_dim, frames)` — the ODE's z₀."""
        features = self.feature_extractor(source_waveform, sampling_rate=self.sampling_rate, return_tensors="pt")
        input_values = features["input_values"].to(self.device, self.codec.dtype)
        latents = self.codec.encode(input_values).quantized_latents.to(self.model.dtype)
        return self.model.normalize_latents(latents)

    # 4. the two ODE legs ---------------------------------------------------------------------------
    def _denoise(self, latents, timestep, condition, frame_mask, prompt_hidden, prompt_mask):
        timesteps = timestep.expand(latents.shape[0]).to(self.device, latents.dtype)
        return self.model.denoise(latents, timesteps, condition, frame_mask, prompt_hidden, prompt_mask)

    def invert_latents(self, latents, num_forward_steps, condition, frame_mask, prompt_hidden, prompt_mask):
        """Forward probability-flow ODE: z₀ `(batch, latent_dim, frames)` → z at `timesteps[-1 - num_forward_steps]`.

        The first step, at t_min, takes z₀ itself as ẑ₀ (ours): the clean latent is known there, and the
        score divides any error of a predicted ẑ₀ by σ²(t_min) ≈ β_min · t_min (5e-6), which throws the
        trajectory far off (seen with the shipped model: the output became babble)."""
        for index, timestep in enumerate(self.progress_bar(self.scheduler.forward_timesteps[:num_forward_steps])):
            if index == 0:
                predicted = latents
            else:
                predicted = self._denoise(latents, timestep, condition, frame_mask, prompt_hidden, prompt_mask)
            latents = self.scheduler.forward_step(predicted, timestep, latents).prev_sample
        return latents

    def renoise_latents(self, latents, start_index, generator):
        """z₀ `(batch, latent_dim, frames)` → z at `timesteps[start_index]` by the VP marginal with fresh noise
        (SDEdit; ours): α_t z₀ + σ_t · τ^(−½) ε, the noise narrowed by the temperature as the initial noise of
        sampling is. Unlike the ODE it keeps nothing of the source's fine detail, its noise included."""
        noise = torch.randn(latents.shape, generator=generator, device="cpu", dtype=torch.float32)
        noise = noise.to(self.device, latents.dtype) * self.scheduler.init_noise_sigma
        return self.scheduler.add_noise(latents, noise, self.scheduler.timesteps[start_index])

    def sample_latents(self, latents, start_index, condition, frame_mask, prompt_hidden, prompt_mask):
        """Reverse probability-flow ODE from `timesteps[start_index]` to t = 0; `(batch, latent_dim, frames)`."""
        for timestep in self.progress_bar(self.scheduler.timesteps[start_index:]):
            predicted = self._denoise(latents, timestep, condition, frame_mask, prompt_hidden, prompt_mask)
            latents = self.scheduler.step(predicted, timestep, latents).prev_sample
        return latents

    @torch.no_grad()
    def __call__(
        self,
        source_audio: PromptAudio,
        prompt_audio: PromptAudio,
        transcript: Optional[str] = None,
        source_sampling_rate: Optional[int] = None,
        prompt_sampling_rate: Optional[int] = None,
        strength: float = 0.8,
        num_inference_steps: int = 150,
        shift_pitch: bool = True,
        inversion: str = "ode",
        min_phone_frames: int = 1,
        generator: Optional[torch.Generator] = None,
        harmonic_phase: Optional[bool] = None,
        output_type: str = "np",
        return_dict: bool = True,
    ):
        r"""Say what `source_audio` says, with its timing and melody, in the voice of `prompt_audio`.

        Args:
            source_audio: the speech to convert (path, or array/tensor with `source_sampling_rate`), 0.5–30 s.
            prompt_audio: a few seconds of the target voice (as in [`NS2Pipeline`]).
            transcript: what the source says; None transcribes it with the offline ASR (Whisper tiny.en).
            strength: t_s, how far the forward ODE carries the source before the target prompt takes over:
                1 goes all the way to t = 1, small values keep more of the source (its voice too).
            num_inference_steps: steps of the full schedule; the forward and reverse legs each take
                `round(strength · (num_inference_steps − 1))` of them (plus the final ẑ₀ step).
            shift_pitch: move the source pitch into the prompt's range (False keeps it as it is).
            inversion: `"ode"` (the paper: the forward probability-flow ODE, deterministic, keeps the most of the
                source) or `"noise"` (the VP marginal with fresh noise: keeps only what survives the noise).
            min_phone_frames: lengthen the source's phones shorter than this many codec frames (12.5 ms each) with
                frames of its longest tokens, its length kept, and stretch its latents and pitch with them
                ([`lengthen_short_phones`]; ours). 1 (default) keeps the aligner's durations, as the paper does.
            generator: the random source of `inversion="noise"`.
            harmonic_phase: decode the voiced phonemes' frames with a harmonic phase at the output's pitch (as in
                [`NS2Pipeline.__call__`]); None: on for a codec with the Fourier decoder.
            output_type: `"np"`, `"pt"` or `"latent"`.
            return_dict: return an [`NS2VoiceConversionPipelineOutput`] instead of a tuple.

        Returns:
            [`NS2VoiceConversionPipelineOutput`] (or `(audios, sampling_rate, durations, transcripts, pitch)`).
        """
        self.check_conversion_inputs(strength, num_inference_steps, transcript, inversion, min_phone_frames)
        harmonic = self.uses_harmonic_phase(harmonic_phase)
        if output_type not in ("np", "pt", "latent"):
            raise ValueError(f"`output_type` must be 'np', 'pt' or 'latent', got {output_type!r}.")

        # 2. the source: phonemes, durations, pitch, latents; the two prompts
        source_waveform = self.load_source(source_audio, source_sampling_rate)
        transcript = transcript if transcript is not None else self.transcribe_source(source_waveform)
        phoneme_ids, phoneme_mask = self.encode_text([transcript])
        source_latents = self.encode_source(source_waveform)
        num_frames = source_latents.shape[-1]
        if int(phoneme_mask.sum()) > num_frames:
            raise ValueError(
                f"the transcript has {int(phoneme_mask.sum())} phonemes but the source only {num_frames} codec frames; "
                "is it the right transcript?"
            )
        durations, frame_map = self.lengthen_phones(phoneme_ids, self.align_source(phoneme_ids, source_waveform), min_phone_frames)
        source_latents = source_latents[..., frame_map.to(source_latents.device)]
        phoneme_hidden = self.model.encode_phonemes(phoneme_ids, phoneme_mask)
        frame_hidden, frame_mask = self.model.length_regulate(phoneme_hidden, durations)
        source_log_f0, source_voiced = (values[frame_map.numpy()] for values in self.source_pitch(source_waveform, num_frames))
        target_prompt = self.load_prompt(prompt_audio, prompt_sampling_rate)
        target_log_f0 = self.move_pitch(source_log_f0, source_voiced, target_prompt) if shift_pitch else source_log_f0

        def condition_for(log_f0):
            return self.model.build_condition(frame_hidden, torch.from_numpy(log_f0).to(self.device, frame_hidden.dtype)[None])

        target_prompt_hidden, target_prompt_mask = self.encode_prompt(target_prompt, 1)

        # 3.–4. the source to t_s (forward ODE with its own voice, or fresh noise), then back with the target's
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        num_forward_steps = round(strength * (num_inference_steps - 1))
        start_index = num_inference_steps - 1 - num_forward_steps
        if inversion == "ode":  # with the source's own voice as the prompt
            source_prompt_hidden, source_prompt_mask = self.encode_prompt(self.load_prompt(source_waveform, self.sampling_rate), 1)
            latents = self.invert_latents(
                source_latents, num_forward_steps, condition_for(source_log_f0), frame_mask, source_prompt_hidden, source_prompt_mask
            )
        else:
            latents = self.renoise_latents(source_latents, start_index, generator)
        latents = self.sample_latents(
            latents,
            start_index,
            condition_for(target_log_f0),
            frame_mask,
            target_prompt_hidden,
            target_prompt_mask,
        )

        # 5. decode
        if output_type == "latent":
            audios = [self.model.denormalize_latents(latents[0])]
        else:
            f0, voiced = (None, None)
            if harmonic:
                f0, voiced = self.harmonic_phase_contour(torch.from_numpy(target_log_f0).to(self.device)[None], phoneme_ids, durations)
            audios = self.decode_latents(latents, frame_mask, f0, voiced)
            if output_type == "np":
                audios = [audio.cpu().numpy() for audio in audios]
        self.maybe_free_model_hooks()
        outputs = (audios, self.sampling_rate, [durations[0].cpu()], [transcript], [np.exp(target_log_f0).astype(np.float32)])
        if not return_dict:
            return outputs
        return NS2VoiceConversionPipelineOutput(*outputs)
