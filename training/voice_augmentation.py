"""Voice augmentation that makes new speakers from a corpus (ours; issue 13): `prepare_dataset.py --augment_speakers N`.

A zero-shot model learns "take the voice of the prompt" only from the speakers it sees; with 16 the prompt encoder
has little to generalise from. Each augmented speaker is one real speaker's utterances passed through the same
voice transform — Praat's "Change gender" (PSOLA, via parselmouth, the tracker the dataset already uses): the pitch
moved by a number of semitones, the formants scaled by a vocal-tract-length factor (independently of the pitch), and
the tempo by a speed factor — under a new speaker id. Since every utterance of the new speaker went through the same
transform, a prompt is always another utterance of the same (augmented) voice. Features (pitch, frame count) are
measured again on the transformed audio; text and phonemes are unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import List, Mapping

import numpy as np

#: Ranges the transforms are drawn from (ours): pitch moves 2–6 semitones up or down, formants by up to ±12 %
#: (vocal tract length about that of another adult or a teenager), tempo by up to ±10 %.
SEMITONE_RANGE = (2.0, 6.0)
FORMANT_RATIO_RANGE = (0.88, 1.12)
DURATION_FACTOR_RANGE = (0.9, 1.1)
#: Pitch range Praat analyses in (Hz).
PITCH_FLOOR, PITCH_CEILING = 60.0, 600.0
#: A shift whose target median f0 leaves this range (Hz) goes the other way: below ~80 Hz speech turns to creak and
#: the trackers make octave errors; above ~350 Hz it is no longer a speaking voice.
TARGET_F0_RANGE = (80.0, 350.0)


@dataclass(frozen=True)
class VoiceTransform:
    """One augmented speaker: `source_speaker`'s utterances with pitch × 2^(semitones/12), formants × formant_ratio
    and duration × duration_factor, under the id `speaker_id`."""

    speaker_id: str
    source_speaker: str
    semitones: float
    formant_ratio: float
    duration_factor: float

    def as_dict(self) -> dict:
        return asdict(self)


def draw_transforms(speaker_f0: Mapping[str, float], count: int, seed: int) -> List[VoiceTransform]:
    """`count` voice transforms, the source speakers taken in turn from `speaker_f0` (sorted by id), the factors
    drawn from the module's ranges with `numpy.random.default_rng(seed)`; new ids are `<source>_aug<k>`.

    Args:
        speaker_f0: each speaker's median f0 in Hz; a pitch shift whose target would leave `TARGET_F0_RANGE`
            goes the other way.
        count: the number of new speakers.
        seed: seed of the draws.

    Raises:
        ValueError: for a negative count, or a positive count with no speaker to augment.
    """
    if count < 0:
        raise ValueError(f"the number of augmented speakers must be >= 0, got {count}")
    speakers = sorted(speaker_f0)
    if count and not speakers:
        raise ValueError("no speaker to augment (held-out speakers are never augmented)")
    rng = np.random.default_rng(seed)
    transforms = []
    for index in range(count):
        source = speakers[index % len(speakers)]
        semitones = float(rng.choice([-1.0, 1.0]) * rng.uniform(*SEMITONE_RANGE))
        target = speaker_f0[source] * 2.0 ** (semitones / 12.0)
        if not TARGET_F0_RANGE[0] <= target <= TARGET_F0_RANGE[1]:
            semitones = -semitones
        formant_ratio = float(np.exp(rng.uniform(*np.log(FORMANT_RATIO_RANGE))))
        transforms.append(VoiceTransform(f"{source}_aug{index}", source, semitones, formant_ratio,
                                         float(rng.uniform(*DURATION_FACTOR_RANGE))))
    return transforms


def transform_voice(waveform: np.ndarray, sampling_rate: int, transform: VoiceTransform, median_f0: float) -> np.ndarray:
    """Apply `transform` to one utterance.

    Args:
        waveform: `(samples,)` float mono.
        sampling_rate: its rate.
        transform: the voice transform.
        median_f0: the utterance's median f0 in Hz over voiced frames (moved to `median_f0 · 2^(semitones/12)`).

    Returns:
        `(round(samples · duration_factor),)` float32 at the same rate, peak-limited to 0.99.
    """
    import parselmouth
    from parselmouth.praat import call

    sound = parselmouth.Sound(np.asarray(waveform, dtype=np.float64), sampling_frequency=sampling_rate)
    new_median = median_f0 * 2.0 ** (transform.semitones / 12.0)
    changed = call(sound, "Change gender", PITCH_FLOOR, PITCH_CEILING, transform.formant_ratio, new_median, 1.0,
                   transform.duration_factor)
    audio = changed.values[0].astype(np.float32)
    peak = float(np.abs(audio).max())
    return audio * (0.99 / peak) if peak > 0.99 else audio
