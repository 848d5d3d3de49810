"""Text front end: normalization, grapheme-to-phoneme conversion (gruut, en-us) and the
phoneme tokenizer."""

from transformers import AutoTokenizer

from .g2p import WORD_BOUNDARY, TextInputError, gruut_phone_inventory, phonemize
from .normalization import SENTENCE_PUNCTUATION, normalize_text
from .tokenization_ns2 import NS2PhonemeTokenizer, UnknownPhonemeError


def register_auto_tokenizer(config_class) -> None:
    """Make `AutoTokenizer` load `NS2PhonemeTokenizer` for models whose config is `config_class`
    (a `PreTrainedConfig` subclass registered with `AutoConfig`). Safe to call twice."""
    AutoTokenizer.register(config_class, tokenizer_class=NS2PhonemeTokenizer, exist_ok=True)


__all__ = [
    "NS2PhonemeTokenizer",
    "SENTENCE_PUNCTUATION",
    "TextInputError",
    "UnknownPhonemeError",
    "WORD_BOUNDARY",
    "gruut_phone_inventory",
    "normalize_text",
    "phonemize",
    "register_auto_tokenizer",
]
