"""Reference phone labels (festival radio, ARPAbet) put on the front end's gruut IPA tokens."""

import pytest

from ns2_hf.alignment.phone_mapping import (
    PAUSE,
    PhoneMappingError,
    check_reference_labels,
    durations_on_tokens,
    reference_phone,
)

PHONES = {"h", "ɛ", "l", "oʊ", "w", "ɚ", "d", "ɪ", "ə", "æ", "t"}
HELLO_WORLD = "h ɛ l ˈoʊ , | w ˈɚ l d .".split()  # phonemize("Hello, world.")


def test_festival_and_arpabet_labels_map_to_unstressed_ipa():
    assert [reference_phone(label) for label in ("ae", "AE1", "ah0", "hh", "jh", "dx")] == ["æ", "æ", "ʌ", "h", "d͡ʒ", "t"]
    assert {reference_phone(label) for label in ("pau", "sil", "sp", "SIL", "")} == {PAUSE}
    assert reference_phone("ˈæ", known_ipa=PHONES) == "æ"
    with pytest.raises(PhoneMappingError, match="'ˈæ'"):
        reference_phone("ˈæ")  # IPA only when the front end's phones are given


def test_unknown_labels_are_refused_by_name():
    check_reference_labels(["pau", "w", "EH1", "ˈɚ"], PHONES)
    with pytest.raises(PhoneMappingError, match=r"\['tʰ', 'ɾ'\]"):
        check_reference_labels(["tʰ", "ɾ", "sil", "d"], PHONES)


def test_durations_follow_the_reference_onto_front_end_tokens():
    labels = ["sil", "HH", "EH0", "L", "OW1", "sp", "W", "ER1", "L", "D", "sil"]
    frames = [5, 2, 3, 4, 6, 7, 2, 5, 3, 4, 8]
    durations = durations_on_tokens(HELLO_WORLD, labels, frames, PHONES)
    # the leading pause joins the first phone, the comma takes the pause, the unpaused word boundary gets 0
    assert durations == [7, 3, 4, 6, 7, 0, 2, 5, 3, 4, 8]


def test_a_differing_phone_shares_its_frames_and_the_total_is_kept():
    tokens = "d ɪ l t".split()
    durations = durations_on_tokens(tokens, ["d", "ax", "ax", "l", "t"], [4, 3, 2, 5, 6], PHONES)
    assert durations == [4, 5, 5, 6]


def test_another_text_is_refused():
    with pytest.raises(PhoneMappingError, match="match the reference"):
        durations_on_tokens(HELLO_WORLD, ["t", "ae", "t", "ae", "t"], [1, 2, 3, 4, 5], PHONES)
