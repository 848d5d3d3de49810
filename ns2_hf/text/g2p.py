"""Grapheme-to-phoneme conversion for American English with gruut.

Text is normalized (`normalize_text`), then gruut (language "en-us": a 128k-word lexicon, a
CRF guesser for unknown words, part-of-speech tags for homographs) turns each word into IPA
phones. The output of `phonemize` is one flat token list:

- **phones** as gruut splits them, with the stress mark attached to the vowel it belongs to
  (`"ˈæ"`, `"ˌæ"` and `"æ"` are three tokens). Every phone token is one sounding segment, so each
  gets a duration from the aligner and no token exists only to carry stress;
- **`WORD_BOUNDARY`** (`"|"`) before every word but the first;
- **punctuation** (`, . ! ? ; : —`) right after the word it follows, so the aligner can give the
  pause that follows it to that token.

Example: "Hello, world." → `h ɛ l ˈoʊ , | w ˈɚ l d .`

`gruut_phone_inventory()` lists every phone gruut can produce for en-us (70, read from the
lexicon and the guesser's label set); the tokenizer's default vocabulary is that list plus
`WORD_BOUNDARY` and `SENTENCE_PUNCTUATION`.

Speed: 5–12 ms per sentence (the 1280 corpus transcripts, a shared 2-core machine); the first
call takes about 0.2 s (gruut loads its models, the lexicon is copied into memory and indexed; the
text processor is then cached for the process). gruut imports `dateparser` at module level, which
compiles its time-zone patterns (0.6 s) although only a word that looks like a date needs it, so it
is imported when first used (`_import_dateparser_lazily`). Stock gruut takes 40–150 ms per sentence on the
same machine, because its lexicon database has no index; the phones are the same.

Licences: gruut, gruut-ipa and gruut-lang-en are MIT; num2words is LGPL-2.1 (used as a library,
unmodified). No GPL component (espeak-ng) is used.
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import logging
import re
import sqlite3
import sys
import types
from contextlib import closing

from .normalization import SENTENCE_PUNCTUATION, normalize_text

logger = logging.getLogger(__name__)

WORD_BOUNDARY = "|"
"""Token placed between two words."""

GRUUT_LANGUAGE = "en_US"


class TextInputError(ValueError):
    """Raised for text the front end cannot turn into phonemes: empty, or nothing pronounceable."""


class UnknownPhonemeError(ValueError):
    """Raised by a `strict` tokenizer for a phoneme symbol that is not in its vocabulary (defined here, beside
    `TextInputError`, so the argument checks can name both without importing transformers)."""


# gruut reads a one-letter word with a period ("Hydrogen U.") as a dotted initial and drops the
# period; set the period apart so it stays a sentence end.
_LETTER_PERIOD = re.compile(r"\b([A-Za-z])\.")


def _indexed_lexicon() -> sqlite3.Connection:
    """gruut's en-us lexicon (128k words) copied into memory with an index on `word`. The
    shipped database has no index, so each lookup of a new word would scan the whole table."""
    import gruut_lang_en

    lexicon = sqlite3.connect(":memory:", check_same_thread=False)
    with closing(sqlite3.connect(gruut_lang_en.get_lang_dir() / "lexicon.db")) as shipped:
        shipped.backup(lexicon)
    lexicon.execute("CREATE INDEX word_phonemes_word ON word_phonemes (word)")
    return lexicon


class _DeferredModule(types.ModuleType):
    """Stands in `sys.modules` for a module not imported yet: the first attribute looked up on it imports the
    real module (which then replaces it in `sys.modules`) and every lookup is answered from that."""

    def __getattr__(self, name: str):
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


def _import_dateparser_lazily() -> None:
    """Defers `dateparser` (`_DeferredModule`): gruut imports it at module level, which compiles its time-zone
    patterns (0.6 s), but calls `dateparser.parse` only for words that look like dates. Does nothing when it is
    imported already or not installed."""
    if "dateparser" not in sys.modules and importlib.util.find_spec("dateparser") is not None:
        sys.modules["dateparser"] = _DeferredModule("dateparser")


@functools.lru_cache(maxsize=1)
def _text_processor():
    """The gruut text processor, built once per process. "—" is added to gruut's phrase breaks
    so the dash reaches the output as a pause token; the lexicon is the indexed in-memory copy,
    looked up with the same fallbacks gruut uses (lower case, then without non-word characters)."""
    _import_dateparser_lazily()
    from gruut import TextProcessor
    from gruut.phonemize import SqlitePhonemizer
    from gruut.utils import remove_non_word_chars

    phonemizer = SqlitePhonemizer(
        db_conn=_indexed_lexicon(),
        word_transform_funcs=[str.lower, remove_non_word_chars, lambda word: remove_non_word_chars(word.lower())],
    )
    return TextProcessor(
        default_lang=GRUUT_LANGUAGE,
        major_breaks={".", "?", "!"},
        minor_breaks={",", ";", ":", "—"},
        lookup_phonemes=phonemizer,
    )


def phonemize(text: str) -> list[str]:
    """Normalize English text and convert it to a flat list of phone, word-boundary and
    punctuation tokens (see the module docstring for the format).

    Words gruut cannot pronounce (e.g. non-Latin script) are skipped with a warning.

    Args:
        text: English text.

    Returns:
        `list[str]` of tokens, e.g. `["k", "ˈæ", "t", "."]` for "Cat.".

    Raises:
        TextInputError: the text is empty, whitespace only, or has nothing pronounceable.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not text.strip():
        raise TextInputError("text is empty (nothing but whitespace); give at least one word.")
    normalized = normalize_text(text)

    processor = _text_processor()
    graph, root = processor(_LETTER_PERIOD.sub(r"\1 .", normalized), lang=GRUUT_LANGUAGE)
    tokens: list[str] = []
    has_word = False
    for sentence in processor.sentences(graph, root, break_phonemes=False):
        for word in sentence:
            if word.is_break:
                if has_word and word.text in SENTENCE_PUNCTUATION:
                    tokens.append(word.text)
            elif word.phonemes:
                if has_word:
                    tokens.append(WORD_BOUNDARY)
                tokens.extend(word.phonemes)
                has_word = True
            elif word.is_spoken:
                logger.warning("gruut has no pronunciation for %r in %r; the word is skipped.", word.text, text)
    if not has_word:
        raise TextInputError(
            f"text has no pronounceable content: {text!r} (normalized: {normalized!r}); "
            "give English words written in Latin letters."
        )
    return tokens


def gruut_phone_inventory() -> list[str]:
    """Every phone gruut can output for en-us, sorted: the phones of its lexicon and the labels
    of its grapheme-to-phoneme guesser. Used to build (and to check) the default vocabulary."""
    import gruut_lang_en
    import pycrfsuite

    lang_dir = gruut_lang_en.get_lang_dir()
    phones: set[str] = set()
    with closing(sqlite3.connect(lang_dir / "lexicon.db")) as lexicon:
        for (pronunciation,) in lexicon.execute("SELECT phonemes FROM word_phonemes"):
            phones.update(pronunciation.split())
    tagger = pycrfsuite.Tagger()
    tagger.open(str(lang_dir / "g2p" / "model.crf"))
    for label in tagger.labels():
        # Labels are base64 text: phones joined by "|", "_" for a silent letter.
        phones.update(phone for phone in base64.b64decode(label).decode("utf-8").split("|") if phone != "_")
    return sorted(phones)
