"""Imported reference timings put on the front end's phone tokens.

Reference alignments label phones in their tool's phone set: the corpus's festival files use festival's `radio`
set (`aa`, `ae`, `pau`, …), MFA's English ARPAbet model writes CMU labels with stress digits (`AA1`, `sil`, `sp`).
The pipeline reads gruut IPA tokens (`ns2_hf.text.g2p`: stress on the vowel, `|` between words, punctuation), so a
model trained on the reference labels could not read a single sentence the pipeline gives it. Instead the
utterance keeps the front end's tokens and takes its durations from the reference:

1. each reference label becomes its IPA phone without stress (`reference_phone`; silences become a pause);
2. those phones are matched against the front end's phones, stress removed, with `difflib.SequenceMatcher`
   (word boundaries and punctuation stand for pauses on the front end's side; `, |` is one pause, given to
   the punctuation);
3. matched tokens take their segment's frames; a run of differing phones shares its reference frames evenly;
   front-end tokens the reference lacks get 0 frames (a word boundary with no pause), reference segments the
   front end lacks go to the token before them (a leading pause to the first token: the front end has no
   token for it).

Labels outside the known sets raise `PhoneMappingError` naming them; an utterance whose phones match the
reference's too little (another pronunciation, another text) raises it too, so the caller can skip it.
"""

from __future__ import annotations

import difflib
import re
from typing import List, Optional, Sequence

# CMU / ARPAbet (festival's radio set is the lower-case ARPAbet plus `ax`) to the IPA phones gruut writes
ARPABET_TO_IPA = {
    "aa": "ɑ", "ae": "æ", "ah": "ʌ", "ao": "ɔ", "aw": "aʊ", "ax": "ə", "axr": "ɚ", "ay": "aɪ", "eh": "ɛ", "er": "ɚ",
    "ey": "eɪ", "ih": "ɪ", "ix": "ɪ", "iy": "i", "ow": "oʊ", "oy": "ɔɪ", "uh": "ʊ", "uw": "u", "ux": "u",
    "b": "b", "ch": "t͡ʃ", "d": "d", "dh": "ð", "dx": "t", "f": "f", "g": "ɡ", "hh": "h", "jh": "d͡ʒ", "k": "k",
    "l": "l", "el": "l", "m": "m", "em": "m", "n": "n", "en": "n", "ng": "ŋ", "p": "p", "r": "ɹ", "s": "s",
    "sh": "ʃ", "t": "t", "th": "θ", "v": "v", "w": "w", "y": "j", "z": "z", "zh": "ʒ",
}
#: Labels of pauses: festival's `pau`/`ssil`, MFA's `sil`/`sp`/`spn` and empty intervals, TIMIT's `h#`.
SILENCE_LABELS = frozenset({"pau", "ssil", "sil", "sp", "spn", "h#", ""})
PAUSE = "_"
STRESS_MARKS = "ˈˌ"
_STRESS_DIGIT = re.compile(r"(?<=[a-z])[012]$")


class PhoneMappingError(ValueError):
    """Reference phone labels that cannot be put on the front end's phone tokens."""


def reference_phone(label: str, known_ipa: Optional[set] = None) -> str:
    """The front-end (gruut IPA, unstressed) phone of reference `label`, or `PAUSE` for a silence.

    `label` may be festival radio (`ae`), ARPAbet with a stress digit (`AE1`) or, when `known_ipa` is given, already
    one of those IPA phones (stress marks ignored). Raises `PhoneMappingError` for anything else."""
    lowered = label.strip().lower()
    if lowered in SILENCE_LABELS:
        return PAUSE
    arpabet = _STRESS_DIGIT.sub("", lowered)
    if arpabet in ARPABET_TO_IPA:
        return ARPABET_TO_IPA[arpabet]
    unstressed = label.strip().lstrip(STRESS_MARKS)
    if known_ipa is not None and unstressed in known_ipa:
        return unstressed
    raise PhoneMappingError(f"reference phone label {label!r} is neither festival radio, ARPAbet nor a front-end IPA phone")


def check_reference_labels(labels: Sequence[str], known_ipa: set) -> None:
    """Raises `PhoneMappingError` listing every label of `labels` that `reference_phone` cannot map."""
    unknown = set()
    for label in set(labels):
        try:
            reference_phone(label, known_ipa)
        except PhoneMappingError:
            unknown.add(label)
    if unknown:
        raise PhoneMappingError(
            f"reference alignments use phone labels the front end cannot map: {sorted(unknown)}. Known: festival "
            "radio and ARPAbet labels (with stress digits), silences "
            f"{sorted(SILENCE_LABELS - {''})}, and the front end's gruut IPA phones.")


def _front_end_key(token: str, phones: set) -> str:
    unstressed = token.lstrip(STRESS_MARKS)
    return unstressed if unstressed in phones else PAUSE


def durations_on_tokens(tokens: Sequence[str], labels: Sequence[str], durations: Sequence[int], phones: set,
                        min_matched: float = 0.75) -> List[int]:
    """Frames for each front-end token from a reference alignment of the same utterance.

    Args:
        tokens: the front end's tokens (`phonemize` output: stressed IPA phones, `|`, punctuation).
        labels: the reference's phone labels, one per segment.
        durations: frames of each reference segment (`durations_from_segments`).
        phones: the unstressed IPA phones of the front end; other tokens count as pauses.
        min_matched: smallest share of the front end's phones found in the reference.

    Returns:
        `len(tokens)` frame counts summing to `sum(durations)`.

    Raises:
        PhoneMappingError: unknown labels, or fewer than `min_matched` of the phones matched.
    """
    if len(labels) != len(durations):
        raise ValueError(f"{len(labels)} labels but {len(durations)} durations")
    # consecutive pause tokens (`, |`) are one pause, whose frames go to its first token (the punctuation)
    front, first_token = [], []
    for index, token in enumerate(tokens):
        key = _front_end_key(token, phones)
        if not (key == PAUSE and front and front[-1] == PAUSE):
            front.append(key)
            first_token.append(index)
    reference = [reference_phone(label, phones) for label in labels]
    frames_of = [0] * len(front)
    n_phones, n_matched = sum(key != PAUSE for key in front), 0
    matcher = difflib.SequenceMatcher(a=front, b=reference, autojunk=False)
    for operation, start, end, ref_start, ref_end in matcher.get_opcodes():
        frames = int(sum(durations[ref_start:ref_end]))
        if operation == "equal":
            for offset in range(end - start):
                frames_of[start + offset] += durations[ref_start + offset]
            n_matched += sum(key != PAUSE for key in front[start:end])
        elif operation == "replace":  # shared evenly, the remainder to the first tokens
            share, remainder = divmod(frames, end - start)
            for offset in range(end - start):
                frames_of[start + offset] += share + (offset < remainder)
        elif operation == "insert":  # reference segments the front end lacks: the token before (or the first)
            frames_of[max(start - 1, 0)] += frames
    if n_phones and n_matched / n_phones < min_matched:
        raise PhoneMappingError(f"only {n_matched} of the front end's {n_phones} phones match the reference alignment "
                                f"(need {min_matched:.0%}): another pronunciation or another text")
    result = [0] * len(tokens)
    for index, frames in zip(first_token, frames_of):
        result[index] = int(frames)
    return result


__all__ = ["ARPABET_TO_IPA", "PAUSE", "PhoneMappingError", "SILENCE_LABELS", "check_reference_labels",
           "durations_on_tokens", "reference_phone"]
