"""The checks of the generation arguments, in one place: `NS2Pipeline.__call__`, `ns2-tts` and the demo
call :func:`check_generation_arguments` before any heavy work, so a bad value fails early and with the
same message everywhere.

Documented ranges (README, "Troubleshooting"):

| argument | accepted |
|---|---|
| `text` | a string, or a non-empty list of strings, each with a non-space character |
| `num_inference_steps` | an integer from `MIN_INFERENCE_STEPS` to `MAX_INFERENCE_STEPS` |
| `speed` | a finite number in `SPEED_RANGE` (> 1 speaks faster) |
| `temperature` | None (the scheduler's), or a finite number in `TEMPERATURE_RANGE` |
| `seed` | a whole number in `SEED_RANGE` (what `torch.Generator.manual_seed` takes) |
| `prompt_guidance_scale`, `content_guidance_scale` | a finite number in `GUIDANCE_RANGE` (1 = no guidance) |
| `spectrum_matching` | None (the model's default), or a number from 0 (off) to 1 |
| `num_candidates` | None (the model's default), or an integer from 1 to `MAX_CANDIDATES` |
| `candidate_steps` | None (the model's default), or an integer from `MIN_INFERENCE_STEPS` to `MAX_INFERENCE_STEPS` |
"""

from __future__ import annotations

import math
import numbers

from ..audio import AudioInputError
from ..audio.output import OutputPathError
from ..singing.score import ScoreError
from ..text import TextInputError, UnknownPhonemeError
from .loading import ModelLoadError

#: Speaking-rate factor: beyond these the duration predictor's frame counts round to nothing or to drawl.
SPEED_RANGE = (0.25, 4.0)
#: τ of the initial noise N(0, τ⁻¹ I): the paper uses 1.44, the shipped model 25.
TEMPERATURE_RANGE = (0.01, 1000.0)
#: Solver steps (the paper uses 150); more only costs time.
MIN_INFERENCE_STEPS, MAX_INFERENCE_STEPS = 2, 1000
#: w of prompt or content guidance: 0 ignores the prompt (the frame condition) in the denoiser, 1 is the plain
#: denoiser, > 1 pushes towards it.
GUIDANCE_RANGE = (0.0, 10.0)
#: Samples drawn per waveform for the aligner to choose from: each costs a full synthesis.
MAX_CANDIDATES = 16
#: Seeds `torch.Generator.manual_seed` accepts without overflow.
SEED_RANGE = (0, 2**64 - 1)


class GenerationArgumentError(ValueError):
    """Raised for a generation argument out of its documented range (text, steps, speed, temperature, seed)."""


#: Every error bad input or bad files cause, each with a message naming the problem: what `ns2-tts` and the
#: demo report as one line (anything else is a bug).
USER_ERRORS = (GenerationArgumentError, AudioInputError, OutputPathError, ModelLoadError, TextInputError, UnknownPhonemeError,
               ScoreError)


def _real_number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise GenerationArgumentError(f"`{name}` must be a number, got {value!r} ({type(value).__name__}).")
    value = float(value)
    if not math.isfinite(value):
        raise GenerationArgumentError(f"`{name}` must be finite, got {value!r}.")
    return value


def _in_range(name: str, value, bounds, meaning: str = "") -> None:
    value = _real_number(name, value)
    low, high = bounds
    if not low <= value <= high:
        raise GenerationArgumentError(f"`{name}` must be between {low:g} and {high:g}{meaning}, got {value!r}.")


def check_min_phone_frames(min_phone_frames) -> None:
    """The floor on phone durations (`NS2Pipeline` and the conversion pipelines): an integer >= 1."""
    if isinstance(min_phone_frames, bool) or not isinstance(min_phone_frames, int) or min_phone_frames < 1:
        raise GenerationArgumentError(f"`min_phone_frames` must be an integer >= 1, got {min_phone_frames!r}.")


def check_pitch_register_tolerance(tolerance) -> None:
    """How far the output's register may stay from the prompt's (`NS2Pipeline`): None, or a number >= 0
    (`math.inf`: never moved)."""
    if tolerance is None:
        return
    if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real) or not tolerance >= 0:
        raise GenerationArgumentError(
            f"`pitch_register_tolerance` must be a number >= 0 (0.1 = within 10 %, inf = never moved), got {tolerance!r}."
        )


def check_spectrum_matching(strength) -> None:
    """How far the output's long-term spectrum is equalised towards the prompt's (`NS2Pipeline`): None (the model's
    default), or a number from 0 (off) to 1."""
    if strength is not None:
        _in_range("spectrum_matching", strength, (0.0, 1.0), " (0 = off, 1 = the prompt's spectrum within the gain bound)")


def check_num_candidates(num_candidates) -> None:
    """Samples per waveform (`NS2Pipeline`): None (the model's default), or an integer from 1 to `MAX_CANDIDATES`."""
    if num_candidates is None:
        return
    if isinstance(num_candidates, bool) or not isinstance(num_candidates, int) or not 1 <= num_candidates <= MAX_CANDIDATES:
        raise GenerationArgumentError(
            f"`num_candidates` must be an integer from 1 to {MAX_CANDIDATES} (samples per waveform), got {num_candidates!r}."
        )


def check_candidate_steps(candidate_steps) -> None:
    """Solver steps of the candidates' drafts (`NS2Pipeline`): None (the model's default), or an integer from
    `MIN_INFERENCE_STEPS` to `MAX_INFERENCE_STEPS`."""
    if candidate_steps is None:
        return
    if (isinstance(candidate_steps, bool) or not isinstance(candidate_steps, int)
            or not MIN_INFERENCE_STEPS <= candidate_steps <= MAX_INFERENCE_STEPS):
        raise GenerationArgumentError(
            f"`candidate_steps` must be an integer from {MIN_INFERENCE_STEPS} to {MAX_INFERENCE_STEPS} (solver steps of "
            f"each candidate's draft), got {candidate_steps!r}."
        )


def check_text(text) -> None:
    """`text`: a string or a non-empty list of strings, none empty or only spaces."""
    texts = [text] if isinstance(text, str) else text
    if not isinstance(texts, (list, tuple)) or len(texts) == 0:
        raise GenerationArgumentError(f"`text` must be a string or a non-empty list of strings, got {text!r}.")
    for item in texts:
        if not isinstance(item, str):
            raise GenerationArgumentError(f"`text` items must be strings, got {type(item).__name__}.")
        if not item.strip():
            raise GenerationArgumentError("`text` is empty: give at least one word to speak.")


def check_seed(seed) -> int:
    """A seed as an int: a whole number (an integral float is accepted, e.g. from a web form) in `SEED_RANGE`."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Real) or (
        not isinstance(seed, numbers.Integral) and not (math.isfinite(seed) and float(seed).is_integer())
    ):
        raise GenerationArgumentError(f"`seed` must be a whole number, got {seed!r}.")
    seed = int(seed)
    if not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
        raise GenerationArgumentError(f"`seed` must be between 0 and 2**64 - 1, got {seed}.")
    return seed


#: Default of the optional arguments of `check_generation_arguments`: not given, not checked.
NOT_GIVEN = object()


def check_generation_arguments(
    text, num_inference_steps=NOT_GIVEN, speed=NOT_GIVEN, temperature=None, seed=NOT_GIVEN, prompt_guidance_scale=NOT_GIVEN,
    content_guidance_scale=NOT_GIVEN,
) -> None:
    """Checks the arguments given against the documented ranges (`temperature` None = the scheduler's).

    Raises:
        GenerationArgumentError: naming the argument, the accepted range and the value.
    """
    check_text(text)
    if num_inference_steps is not NOT_GIVEN:
        if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, numbers.Integral):
            raise GenerationArgumentError(f"`num_inference_steps` must be an integer, got {num_inference_steps!r}.")
        if not MIN_INFERENCE_STEPS <= num_inference_steps <= MAX_INFERENCE_STEPS:
            raise GenerationArgumentError(
                f"`num_inference_steps` must be between {MIN_INFERENCE_STEPS} and {MAX_INFERENCE_STEPS}, "
                f"got {num_inference_steps}."
            )
    if speed is not NOT_GIVEN:
        _in_range("speed", speed, SPEED_RANGE, " (> 1 speaks faster)")
    if temperature is not None:
        _in_range("temperature", temperature, TEMPERATURE_RANGE, " (τ of the initial noise N(0, 1/τ); paper 1.44)")
    if seed is not NOT_GIVEN:
        check_seed(seed)
    for name, scale in (("prompt_guidance_scale", prompt_guidance_scale), ("content_guidance_scale", content_guidance_scale)):
        if scale is not NOT_GIVEN:
            _in_range(name, scale, GUIDANCE_RANGE, " (1 = no guidance)")
