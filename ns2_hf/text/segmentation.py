"""Long text → chunks the model speaks one at a time: sentences, and long sentences cut at clause boundaries.

The text is normalized first (`normalize_text`: numbers and abbreviations written out), so every `.`, `!`
or `?` left is a sentence end ("Mr." and "3.5" no longer hold one). Each sentence is one chunk unless it
has more than `max_phonemes_per_chunk` phonemes; such a sentence is cut after its clause marks
(`, ; : —`), neighbouring clauses packed together while they fit, and a clause that is itself too long is
cut between words. Chunks are never merged across sentences: a sentence end is where the joined speech
pauses longest (see `ns2_hf.pipelines.long_form`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Callable, List, Optional

from .g2p import TextInputError, phonemize
from .normalization import normalize_text

#: A sentence end: `.`, `!` or `?` followed by a space (after normalization no abbreviation keeps a period).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
#: Marks after which a long sentence may be cut (a clause or phrase boundary, read with a short pause).
CLAUSE_MARKS = (",", ";", ":", "—")


@dataclass
class TextChunk:
    """One piece of a long text, spoken in one pipeline call.

    Args:
        text: the chunk's (normalized) text.
        num_phonemes: its length in phoneme tokens (what the model's sequence length grows with).
        ends_sentence: True if the chunk ends a sentence (a longer pause follows it), False if it ends
            at a clause boundary or between words inside a sentence.
    """

    text: str
    num_phonemes: int
    ends_sentence: bool


def _has_word(piece: str) -> bool:
    return any(character.isalpha() for character in piece)


def _clauses(sentence: str) -> List[str]:
    """`sentence` cut after each clause mark; a piece with no letter (a lone "—") joins the one before."""
    clauses: List[str] = []
    current: List[str] = []
    for word in sentence.split(" "):
        current.append(word)
        if word.endswith(CLAUSE_MARKS):
            clauses.append(" ".join(current))
            current = []
    if current:
        clauses.append(" ".join(current))
    merged: List[str] = []
    for clause in clauses:
        if merged and not _has_word(clause):
            merged[-1] = f"{merged[-1]} {clause}"
        else:
            merged.append(clause)
    return merged


def _pack(pieces: List[str], separator: str, count: Callable[[str], int], limit: int) -> List[str]:
    """Join neighbouring `pieces` greedily while the joined text has at most `limit` phonemes."""
    packed: List[str] = []
    for piece in pieces:
        if packed and count(f"{packed[-1]}{separator}{piece}") <= limit:
            packed[-1] = f"{packed[-1]}{separator}{piece}"
        else:
            packed.append(piece)
    return packed


def split_text(
    text: str, max_phonemes_per_chunk: int = 100, count_phonemes: Optional[Callable[[str], int]] = None
) -> List[TextChunk]:
    """Split `text` into chunks of at most `max_phonemes_per_chunk` phonemes (a single word longer than that
    stays one chunk).

    Args:
        text: any length of English text.
        max_phonemes_per_chunk: the longest chunk, in phoneme tokens; the default 100 is about the longest
            utterance the shipped model was trained on (99th percentile of its corpus: 88).
        count_phonemes: length of a text in phonemes; default the G2P's token count (`len(phonemize(text))`).

    Returns:
        the chunks in reading order.

    Raises:
        TextInputError: the text has no pronounceable word.
        ValueError: `max_phonemes_per_chunk` is below 1.
    """
    if not isinstance(max_phonemes_per_chunk, int) or max_phonemes_per_chunk < 1:
        raise ValueError(f"`max_phonemes_per_chunk` must be a positive integer, got {max_phonemes_per_chunk!r}.")
    count = functools.lru_cache(maxsize=None)(count_phonemes or (lambda piece: len(phonemize(piece))))
    normalized = normalize_text(text)
    sentences = [sentence for sentence in _SENTENCE_END.split(normalized) if _has_word(sentence)]
    if not sentences:
        raise TextInputError(f"text has no pronounceable word: {text[:80]!r}; give English words written in Latin letters.")
    chunks: List[TextChunk] = []
    for sentence in sentences:
        if count(sentence) <= max_phonemes_per_chunk:
            pieces = [sentence]
        else:
            pieces = []
            for clause in _pack(_clauses(sentence), " ", count, max_phonemes_per_chunk):
                if count(clause) <= max_phonemes_per_chunk:
                    pieces.append(clause)
                else:
                    pieces.extend(_pack(clause.split(" "), " ", count, max_phonemes_per_chunk))
        for index, piece in enumerate(pieces):
            chunks.append(TextChunk(piece, count(piece), ends_sentence=index == len(pieces) - 1))
    return chunks
