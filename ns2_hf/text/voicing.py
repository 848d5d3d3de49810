"""Which tokens are phones, and which phones are voiced: where the codec's harmonic phase applies
(`NS2Pipeline(harmonic_phase=...)`).

The phone set is gruut's en-us IPA (`vocab.json`), with stress marks. Voiceless: the voiceless obstruents
/p t k f θ s ʃ t͡ʃ/ and /h/. Voiced: every other phone — vowels and diphthongs, nasals, liquids, glides and the
voiced obstruents (a voiced stop's closure is nearly silent, so its harmonic phase costs nothing). Special
tokens, word boundaries and punctuation are not phones: unvoiced.
"""

from __future__ import annotations

VOICELESS_PHONES = frozenset({"p", "t", "k", "f", "θ", "s", "ʃ", "t͡ʃ", "h"})
STRESS_MARKS = "ˈˌ"


def is_phone(token: str) -> bool:
    """True for a phone (with or without stress marks); False for special tokens, word boundaries and punctuation."""
    phone = token.lstrip(STRESS_MARKS)
    return bool(phone) and any(character.isalpha() for character in phone) and not phone.startswith("<")


def is_voiced(token: str) -> bool:
    """True for a voiced phone (stress marks ignored); False for voiceless phones and non-phone tokens."""
    return is_phone(token) and token.lstrip(STRESS_MARKS) not in VOICELESS_PHONES
