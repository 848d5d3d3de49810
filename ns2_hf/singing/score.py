"""A sung score → what `NS2Pipeline` needs to sing it: lyrics, per-phoneme durations, per-frame f0.

NaturalSpeech 2 sings by taking duration and pitch from a score instead of its predictors (§5.2).
Scores are read from standard MIDI files with `pretty-midi` (ours: MIDI is what every notation
program and DAW exports, pretty-midi is small, pure Python over `mido`, and reads notes and lyric
events in seconds directly; MusicXML through music21 would add a large dependency for syllable
data we do not use).

The mapping (ours; the paper does not describe one):

- **melody**: the notes of the first non-drum instrument that has any, in time order; they must not
  overlap (one voice sings one note at a time).
- **lyrics**: one word per note, from the `lyrics` argument (whitespace-separated) or else the
  file's lyric events. A `-` instead of a word holds the previous word over that note too
  (melisma). The word count after the tokenizer's normalisation must equal the number of words.
- **frames**: times become codec frames at `frame_rate` (`sampling_rate / hop_length`); the song
  starts at the first note's onset.
- **durations**: a word lasts from its first note's onset to its last note's end. Its consonants
  get `consonant_frames` each (fewer when the notes are short), its vowels share the rest equally,
  so vowels carry the notes as singers do. The rest between two words goes to the word boundary
  token `|` (and the punctuation before it, if any, gets 0).
- **f0**: the frequency of the note under each frame; in rests the previous note's frequency is
  held (the f0 a condition needs is positive everywhere; the phonemes there are silent anyway).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Union

import numpy as np

from ..text import SENTENCE_PUNCTUATION, WORD_BOUNDARY

#: Lyric that holds the previous word over a further note.
HOLD = "-"
#: IPA letters that make a phone a vowel (gruut's vowels and diphthongs contain one of them).
_VOWEL_LETTERS = set("aeiouæɑɒɔəɚɛɜɝɪʊʌy")


class ScoreError(ValueError):
    """Raised for a score the singing front end cannot use: unreadable, no notes, overlapping
    notes, lyrics that do not fit the notes, or notes too short for their word."""


@dataclass
class Note:
    """One sung note: `start` and `end` in seconds, `pitch` as a MIDI note number."""

    start: float
    end: float
    pitch: int

    @property
    def frequency(self) -> float:
        """Equal-tempered frequency in Hz (A4 = MIDI 69 = 440 Hz)."""
        return 440.0 * 2.0 ** ((self.pitch - 69) / 12.0)


@dataclass
class SingingConditions:
    """A score prepared for `NS2Pipeline(text, durations=[durations], pitch=[f0])`.

    Args:
        text: the lyrics as one string (the tokenizer turns it into the phonemes `durations` count).
        durations: `(phonemes,)` int64 codec frames per phoneme token.
        f0: `(frames,)` float32 Hz per codec frame, `frames = durations.sum()`.
        note_frames: `(notes, 2)` int64 `[start, end)` frame span of each note.
        note_frequencies: `(notes,)` float32 Hz of each note.
    """

    text: str
    durations: np.ndarray
    f0: np.ndarray
    note_frames: np.ndarray
    note_frequencies: np.ndarray


def read_midi(path: Union[str, os.PathLike]) -> tuple[List[Note], List[str]]:
    """The melody and lyric events of a MIDI file.

    Returns:
        `(notes, lyrics)`: the notes of the first non-drum instrument that has any, sorted by onset;
        the lyric event texts (stripped, empty ones dropped) in time order.

    Raises:
        ScoreError: unreadable file, no notes, or overlapping notes.
    """
    import pretty_midi

    try:
        midi = pretty_midi.PrettyMIDI(os.fspath(path))
    except Exception as error:  # mido/pretty-midi raise many types (OSError, EOFError, KeyError, ...)
        raise ScoreError(f"cannot read the MIDI file {os.fspath(path)!r}: {error}") from error
    instruments = [instrument for instrument in midi.instruments if not instrument.is_drum and instrument.notes]
    if not instruments:
        raise ScoreError(f"{os.fspath(path)!r} has no (non-drum) notes to sing.")
    notes = sorted((Note(n.start, n.end, n.pitch) for n in instruments[0].notes), key=lambda note: note.start)
    lyrics = [event.text.strip() for event in sorted(midi.lyrics, key=lambda event: event.time) if event.text.strip()]
    return notes, lyrics


def _check_notes(notes: Sequence[Note]) -> None:
    if not notes:
        raise ScoreError("the score has no notes.")
    for index, note in enumerate(notes):
        if not note.end > note.start >= 0:
            raise ScoreError(f"note {index} has start {note.start:.3f} s and end {note.end:.3f} s; need 0 <= start < end.")
        if index and note.start < notes[index - 1].end - 1e-6:
            raise ScoreError(
                f"notes {index - 1} and {index} overlap ({notes[index - 1].end:.3f} s > {note.start:.3f} s): "
                "the melody must be monophonic, one note at a time."
            )


def _word_groups(tokens: List[str]) -> List[List[str]]:
    """Tokens split at word boundaries; each group is a word's phones plus punctuation after it."""
    groups: List[List[str]] = [[]]
    for token in tokens:
        if token == WORD_BOUNDARY:
            groups.append([])
        else:
            groups[-1].append(token)
    return groups


def _is_vowel(token: str) -> bool:
    return any(char in _VOWEL_LETTERS for char in token)


def _word_durations(phones: List[str], span: int, consonant_frames: int, word: str) -> List[int]:
    """Frames per phone of one word that lasts `span` frames (see the module docstring)."""
    if span < len(phones):
        raise ScoreError(
            f"the word {word!r} has {len(phones)} phonemes but its notes last only {span} frames; "
            "lengthen the notes or slow the tempo."
        )
    vowels = [index for index, phone in enumerate(phones) if _is_vowel(phone)] or list(range(len(phones)))
    consonants = [index for index in range(len(phones)) if index not in vowels]
    # Consonants shrink (to at least 1 frame) when the vowels would get less than a frame each.
    per_consonant = max(1, min(consonant_frames, (span - len(vowels)) // max(1, len(consonants))))
    durations = [per_consonant if index in consonants else 0 for index in range(len(phones))]
    vowel_total = span - per_consonant * len(consonants)
    for rank, index in enumerate(vowels):
        durations[index] = vowel_total // len(vowels) + (1 if rank < vowel_total % len(vowels) else 0)
    return durations


def score_to_conditions(
    notes: Sequence[Note],
    lyrics: Union[str, Sequence[str]],
    tokenizer,
    frame_rate: float,
    consonant_frames: int = 6,
) -> SingingConditions:
    """Durations per phoneme and f0 per frame for singing `lyrics` on `notes`.

    Args:
        notes: the melody, sorted, non-overlapping.
        lyrics: one word (or `-`, hold) per note — a string split on whitespace, or a list.
        tokenizer: the pipeline's `NS2PhonemeTokenizer` (its phonemes are what the durations count).
        frame_rate: codec frames per second (`sampling_rate / hop_length`).
        consonant_frames: frames per consonant when the note is long enough (6 = 75 ms at 80 frames/s).

    Raises:
        ScoreError: see the class.
    """
    _check_notes(notes)
    words = lyrics.split() if isinstance(lyrics, str) else [str(word).strip() for word in lyrics]
    if len(words) != len(notes):
        raise ScoreError(f"the lyrics have {len(words)} words (or '{HOLD}' holds) for {len(notes)} notes; give one per note.")
    if not words or words[0] == HOLD:
        raise ScoreError(f"the first note needs a word, not a '{HOLD}' hold.")

    origin = notes[0].start
    note_frames = np.array(
        [[round((note.start - origin) * frame_rate), round((note.end - origin) * frame_rate)] for note in notes], dtype=np.int64
    )
    note_frames[:, 1] = np.maximum(note_frames[:, 1], note_frames[:, 0] + 1)
    note_frames[1:, 0] = np.maximum(note_frames[1:, 0], note_frames[:-1, 1])  # rounding must not overlap notes
    note_frames[:, 1] = np.maximum(note_frames[:, 1], note_frames[:, 0] + 1)
    # (first note, last note) of each sung word
    word_spans: List[List[int]] = []
    sung_words: List[str] = []
    for index, word in enumerate(words):
        if word == HOLD:
            word_spans[-1][1] = index
        else:
            word_spans.append([index, index])
            sung_words.append(word)
    text = " ".join(sung_words)
    groups = _word_groups(tokenizer.tokenize(text))
    if len(groups) != len(sung_words):
        raise ScoreError(
            f"the lyrics {text!r} become {len(groups)} spoken words after normalisation, not {len(sung_words)} "
            "(numbers and abbreviations expand); spell them out, one word per note."
        )

    durations: List[int] = []
    for word_index, (group, (first, last), word) in enumerate(zip(groups, word_spans, sung_words)):
        if word_index:  # the rest before this word, on the boundary token
            durations.append(int(note_frames[first, 0] - note_frames[word_spans[word_index - 1][1], 1]))
        phones = [token for token in group if token not in SENTENCE_PUNCTUATION]
        if not phones:
            raise ScoreError(f"the word {word!r} has no phonemes to sing.")
        span = int(note_frames[last, 1] - note_frames[first, 0])
        phone_durations = iter(_word_durations(phones, span, consonant_frames, word))
        durations.extend(0 if token in SENTENCE_PUNCTUATION else next(phone_durations) for token in group)

    num_frames = int(note_frames[-1, 1])
    frequencies = np.array([note.frequency for note in notes], dtype=np.float32)
    # The note sounding at each frame; rests hold the previous note.
    note_at_frame = np.searchsorted(note_frames[:, 0], np.arange(num_frames), side="right") - 1
    f0 = frequencies[note_at_frame]
    return SingingConditions(
        text=text,
        durations=np.asarray(durations, dtype=np.int64),
        f0=f0.astype(np.float32),
        note_frames=note_frames,
        note_frequencies=frequencies,
    )


def load_score(
    path: Union[str, os.PathLike], tokenizer, frame_rate: float, lyrics: Optional[Union[str, Sequence[str]]] = None, **kwargs
) -> SingingConditions:
    """`score_to_conditions` for a MIDI file; `lyrics` default to the file's lyric events."""
    notes, midi_lyrics = read_midi(path)
    if lyrics is None:
        if not midi_lyrics:
            raise ScoreError(f"{os.fspath(path)!r} has no lyric events: pass the lyrics (one word per note).")
        lyrics = midi_lyrics
    return score_to_conditions(notes, lyrics, tokenizer, frame_rate, **kwargs)
