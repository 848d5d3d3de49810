"""Phoneme tokenizer for NaturalSpeech 2: text → gruut phones → ids.

The vocabulary is one symbol per id: `<pad>` (id 0), `<unk>` (id 1), then the phoneme symbols.
There are no `<bos>`/`<eos>` tokens: every id the model sees is a phone, a word boundary or a
punctuation mark, and the aligner gives each one a duration. The default vocabulary
(`vocab.json` next to this file) is gruut's full en-us phone inventory plus `WORD_BOUNDARY` and
`SENTENCE_PUNCTUATION`, so `NS2PhonemeTokenizer()` works with no files to download.

Already phonemized input (e.g. festival phones from a forced aligner) goes through
`encode_phonemes` or `tokenizer(phonemes=...)`; a tokenizer for another phone set is built with
`NS2PhonemeTokenizer.from_phonemes(symbols)`.

Unknown symbols map to `<unk>` with one logged warning per symbol, or raise
`UnknownPhonemeError` when the tokenizer is built with `strict=True`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Iterable, Optional, Union

from transformers import BatchEncoding, PreTrainedTokenizer

from .g2p import TextInputError, UnknownPhonemeError, phonemize

logger = logging.getLogger(__name__)

VOCAB_FILES_NAMES = {"vocab_file": "vocab.json"}
DEFAULT_VOCAB_FILE = Path(__file__).with_name("vocab.json")


class NS2PhonemeTokenizer(PreTrainedTokenizer):
    """Tokenizer from English text (or phoneme lists) to phoneme ids for NaturalSpeech 2.

    Text is normalized and phonemized with `ns2_hf.text.phonemize` (gruut, en-us); each phone,
    word boundary `"|"` and punctuation mark is one token. `decode` returns the tokens joined by
    spaces.

    Args:
        vocab_file: JSON file mapping symbol → id; `None` loads the default gruut en-us vocabulary.
        pad_token: padding symbol; must have id 0.
        unk_token: symbol unknown phonemes map to.
        strict: if True, an unknown phoneme raises `UnknownPhonemeError` instead of becoming
            `unk_token`.
        phoneme_inventory: build the vocabulary from these symbols instead of a file (what
            `from_phonemes` does); `pad_token` and `unk_token` come first.

    Example:
        >>> tokenizer = NS2PhonemeTokenizer()
        >>> batch = tokenizer(["A cat.", "The dog sat down."], padding=True, return_tensors="pt")
        >>> batch["input_ids"].shape, batch["attention_mask"].shape  # (batch, tokens)
    """

    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file: Optional[Union[str, os.PathLike]] = None,
        pad_token: str = "<pad>",
        unk_token: str = "<unk>",
        strict: bool = False,
        phoneme_inventory: Optional[Iterable[str]] = None,
        **kwargs,
    ):
        # from_pretrained passes the special tokens as AddedToken objects; the vocabulary holds strings.
        pad_symbol, unk_symbol = str(pad_token), str(unk_token)
        if phoneme_inventory is not None:
            if vocab_file is not None:
                raise ValueError("give either vocab_file or phoneme_inventory, not both")
            self.encoder = _vocab_from_symbols(phoneme_inventory, pad_symbol, unk_symbol)
        else:
            with open(vocab_file or DEFAULT_VOCAB_FILE, encoding="utf-8") as handle:
                self.encoder = json.load(handle)
        for name, symbol in (("pad_token", pad_symbol), ("unk_token", unk_symbol)):
            if symbol not in self.encoder:
                raise ValueError(f"{name} {symbol!r} is not in the vocabulary")
        if self.encoder[pad_symbol] != 0:
            raise ValueError(f"pad_token {pad_symbol!r} must have id 0, it has id {self.encoder[pad_symbol]}")
        if sorted(self.encoder.values()) != list(range(len(self.encoder))):
            raise ValueError("vocabulary ids must be 0 .. len(vocabulary) - 1, each used once")
        self.decoder = {index: token for token, index in self.encoder.items()}
        self.strict = strict
        self._warned_unknown: set[str] = set()
        super().__init__(
            pad_token=pad_token,
            unk_token=unk_token,
            strict=strict,
            special_tokens_pattern="none",
            **kwargs,
        )

    @classmethod
    def from_phonemes(cls, phonemes: Iterable[str], **kwargs) -> "NS2PhonemeTokenizer":
        """A tokenizer whose vocabulary is `<pad>`, `<unk>` and `phonemes` (duplicates dropped,
        order kept), e.g. the phone set of an external aligner. `kwargs` go to `__init__`."""
        return cls(phoneme_inventory=phonemes, **kwargs)

    @property
    def vocab_size(self) -> int:
        return len(self.encoder)

    def get_vocab(self) -> dict[str, int]:
        vocab = dict(self.encoder)
        vocab.update(self.added_tokens_encoder)
        return vocab

    def prepare_for_tokenization(self, text: str, is_split_into_words: bool = False, **kwargs):
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if not text.strip():
            raise TextInputError("text is empty (nothing but whitespace); give at least one word.")
        return text, kwargs

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        """Phones, word boundaries and punctuation of `text` (see `ns2_hf.text.phonemize`)."""
        return phonemize(text)

    def _convert_token_to_id(self, token: str) -> int:
        if token in self.encoder:
            return self.encoder[token]
        if self.strict:
            raise UnknownPhonemeError(
                f"phoneme {token!r} is not in the vocabulary of {len(self.encoder)} symbols; "
                "build the tokenizer with NS2PhonemeTokenizer.from_phonemes(...) for this phone set, "
                "or use strict=False to map unknown phonemes to the unk token."
            )
        if token not in self._warned_unknown:
            self._warned_unknown.add(token)
            logger.warning("phoneme %r is not in the vocabulary; it is mapped to %r.", token, self.unk_token)
        return self.encoder[self.unk_token]

    def _convert_id_to_token(self, index: int) -> str:
        if index not in self.decoder:
            raise ValueError(f"id {index} is outside the vocabulary (0 .. {len(self.encoder) - 1})")
        return self.decoder[index]

    def encode_phonemes(self, phonemes: list[str]) -> list[int]:
        """Ids of an already phonemized sequence.

        Args:
            phonemes: `list[str]` of symbols, e.g. `["k", "ˈæ", "t"]`.

        Returns:
            `list[int]`, one id per symbol (unknown symbols: see `strict`).
        """
        if isinstance(phonemes, str) or not all(isinstance(symbol, str) for symbol in phonemes):
            raise TypeError("phonemes must be a list of str symbols, e.g. ['k', 'ˈæ', 't']")
        if len(phonemes) == 0:
            raise TextInputError("phonemes is empty; give at least one symbol.")
        return self.convert_tokens_to_ids(list(phonemes))

    def __call__(self, text=None, *args, phonemes=None, **kwargs) -> BatchEncoding:
        """Tokenize text as any `PreTrainedTokenizer` does, or, with `phonemes=`, already
        phonemized input: one `list[str]` or a batch `list[list[str]]`. Padding, tensors and the
        attention mask work the same way for both."""
        if phonemes is None:
            return super().__call__(text, *args, **kwargs)
        if text is not None:
            raise ValueError("give either text or phonemes, not both")
        if len(phonemes) > 0 and not isinstance(phonemes[0], str):
            ids = [self.encode_phonemes(sequence) for sequence in phonemes]
        else:
            ids = self.encode_phonemes(phonemes)
        return super().__call__(ids, *args, **kwargs)

    def save_vocabulary(self, save_directory: str, filename_prefix: Optional[str] = None) -> tuple[str]:
        if not os.path.isdir(save_directory):
            raise NotADirectoryError(f"save_directory {save_directory!r} is not a directory")
        vocab_file = os.path.join(
            save_directory, (filename_prefix + "-" if filename_prefix else "") + VOCAB_FILES_NAMES["vocab_file"]
        )
        with open(vocab_file, "w", encoding="utf-8") as handle:
            handle.write(_vocab_json(self.encoder))
        return (vocab_file,)


def _vocab_from_symbols(symbols: Iterable[str], pad_token: str, unk_token: str) -> dict[str, int]:
    vocab = {pad_token: 0, unk_token: 1}
    for symbol in symbols:
        if not isinstance(symbol, str) or not symbol or any(char.isspace() for char in symbol):
            raise ValueError(f"phoneme symbols must be non-empty strings without spaces, got {symbol!r}")
        vocab.setdefault(symbol, len(vocab))
    return vocab


def _vocab_json(vocab: dict[str, int]) -> str:
    """The vocabulary as JSON, one symbol per line in id order."""
    ordered = dict(sorted(vocab.items(), key=lambda item: item[1]))
    return json.dumps(ordered, indent=1, ensure_ascii=False) + "\n"
