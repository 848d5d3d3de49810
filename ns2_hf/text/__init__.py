"""Text front end: normalization, grapheme-to-phoneme conversion (gruut, en-us), the phoneme tokenizer and
the splitting of long text into chunks. Each name is imported on first use (`ns2_hf.lazy`)."""

from ..lazy import lazy_exports


def register_auto_tokenizer(config_class) -> None:
    """Make `AutoTokenizer` load `NS2PhonemeTokenizer` for models whose config is `config_class`
    (a `PreTrainedConfig` subclass registered with `AutoConfig`). Safe to call twice."""
    from transformers import AutoTokenizer

    from .tokenization_ns2 import NS2PhonemeTokenizer

    AutoTokenizer.register(config_class, tokenizer_class=NS2PhonemeTokenizer, exist_ok=True)


_EXPORTS = {
    "NS2PhonemeTokenizer": ".tokenization_ns2",
    "SENTENCE_PUNCTUATION": ".normalization",
    "TextChunk": ".segmentation",
    "TextInputError": ".g2p",
    "UnknownPhonemeError": ".g2p",
    "VOICELESS_PHONES": ".voicing",
    "WORD_BOUNDARY": ".g2p",
    "gruut_phone_inventory": ".g2p",
    "is_phone": ".voicing",
    "is_voiced": ".voicing",
    "normalize_text": ".normalization",
    "phonemize": ".g2p",
    "split_text": ".segmentation",
}
__all__ = sorted(_EXPORTS) + ["register_auto_tokenizer"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
