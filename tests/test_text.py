"""Text front end: normalization, gruut G2P and the phoneme tokenizer."""

import csv
import json
import logging

import pytest
import torch
from transformers import AutoConfig, AutoTokenizer, PreTrainedConfig

from ns2_hf.text import (
    SENTENCE_PUNCTUATION,
    WORD_BOUNDARY,
    NS2PhonemeTokenizer,
    TextInputError,
    UnknownPhonemeError,
    gruut_phone_inventory,
    normalize_text,
    phonemize,
    register_auto_tokenizer,
)
from ns2_hf.text.tokenization_ns2 import DEFAULT_VOCAB_FILE


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "Dr. Smith paid $5.50 on 3/4 — 50% more!",
            "Doctor Smith paid five dollars and fifty cents on three quarters — fifty percent more!",
        ),
        ("Mr. and Mrs. Jones live at 221 Baker St. in London.",
         "Mister and Missus Jones live at two hundred twenty-one Baker Street in London."),
        ("St. Paul's, 1st Ave. vs. 2nd Ave.", "Saint Paul's, first Avenue versus second Avenue."),
        ("I like pears, etc. Then I left.", "I like pears, et cetera. Then I left."),
        ("It cost $1,234.05 in 1984; 12.5% of $2 million.",
         "It cost one thousand two hundred thirty-four dollars and five cents in nineteen eighty-four; "
         "twelve point five percent of two million dollars."),
        ("At 3:05 or 10:00, maybe 5pm.", "At three oh five or ten o'clock, maybe five PM."),
        ("The 1990s and the '80s, 2005 and 1500 people.",
         "The nineteen nineties and the eighties, two thousand five and fifteen hundred people."),
        ("On 3/4/2024, 1/2 a cup, 1990–2000, -5 degrees.",
         "On March fourth twenty twenty-four, one half a cup, nineteen ninety to two thousand, minus five degrees."),
        ("He said \u201chello\u201d\u2014then left\u2026 Wait?! (really)", "He said hello — then left. Wait? really"),
        ("Rock & roll @ home; 2+2=4", "Rock and roll at home; two plus two equals four"),
        ("  Caf\u00e9   na\u00efve  ", "Cafe naive"),
        ("John F. Kennedy visited the U.S. Army. Then the U.S.",
         "John F Kennedy visited the US Army. Then the US."),
        ("seated at dinner alongside Mr.", "seated at dinner alongside Mister."),
        ("e.g., this; i.e., that.", "for example, this; that is, that."),
        ("Well-known -- state-of-the-art - things.", "Well-known — state-of-the-art — things."),
        ("?!", ""),
    ],
)
def test_normalize_text_known_answers(text, expected):
    assert normalize_text(text) == expected


def test_normalize_text_leaves_no_digits_or_symbols():
    text = normalize_text("Call #7 at 9:45 on 2024-03-04; it's 25\u00b0C, \u00a35.20 & \u20ac3 * 10 = 30 | <tag>")
    assert not any(char.isdigit() for char in text)
    assert all(char.isalpha() or char in " '-" or char in SENTENCE_PUNCTUATION for char in text), text


def test_phonemize_known_phones():
    assert phonemize("cat") == ["k", "ˈæ", "t"]
    assert phonemize("Hello, world.") == ["h", "ɛ", "l", "ˈoʊ", ",", WORD_BOUNDARY, "w", "ˈɚ", "l", "d", "."]
    # Numbers are read through normalization.
    assert phonemize("2 cats") == ["t", "ˈu", WORD_BOUNDARY, "k", "ˈæ", "t", "s"]


def test_phonemize_keeps_word_boundaries_and_punctuation():
    tokens = phonemize("Wait — what? Yes; fine: go!")
    assert [t for t in tokens if t in SENTENCE_PUNCTUATION] == ["—", "?", ";", ":", "!"]
    assert tokens.count(WORD_BOUNDARY) == 4  # five words
    # A one-letter word keeps the sentence-final period (gruut alone would drop it).
    assert phonemize("Hydrogen U.")[-2:] == ["ˈu", "."]


def test_phonemize_matches_stock_gruut():
    """The indexed in-memory lexicon gives the same phones as gruut's own pipeline."""
    import gruut

    text = "Scintillate, scintillate, globule vivific; the read book was read by Mr. O'Brien's xyzzq."
    stock = [
        phone
        for sentence in gruut.sentences(normalize_text(text), lang="en-us")
        for word in sentence
        if word.phonemes and not word.is_break
        for phone in word.phonemes
    ]
    ours = [token for token in phonemize(text) if token != WORD_BOUNDARY and token not in SENTENCE_PUNCTUATION]
    assert ours == stock


def test_phonemize_errors(caplog):
    for text in ["", "   \n\t"]:
        with pytest.raises(TextInputError, match="text is empty"):
            phonemize(text)
    with pytest.raises(TextInputError, match="no pronounceable content"):
        phonemize("?! ...")
    with pytest.raises(TypeError):
        phonemize(None)
    with caplog.at_level(logging.WARNING):
        assert phonemize("\u65e5\u672c hello") == ["h", "ɛ", "l", "ˈoʊ"]
    assert "no pronunciation" in caplog.text


def test_default_vocabulary_is_gruut_inventory():
    vocab = json.loads(DEFAULT_VOCAB_FILE.read_text(encoding="utf-8"))
    assert vocab["<pad>"] == 0 and vocab["<unk>"] == 1
    assert sorted(vocab.values()) == list(range(len(vocab)))
    assert set(vocab) == {"<pad>", "<unk>", WORD_BOUNDARY, *SENTENCE_PUNCTUATION, *gruut_phone_inventory()}


def test_tokenizer_ids_round_trip():
    tokenizer = NS2PhonemeTokenizer()
    text = "The quick brown fox, surprisingly, jumped over 3 lazy dogs!"
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == phonemize(text)
    assert tokenizer.decode(ids).split(" ") == phonemize(text)
    assert tokenizer.unk_token_id not in ids and tokenizer.pad_token_id == 0


def test_tokenizer_batch_padding():
    tokenizer = NS2PhonemeTokenizer()
    texts = ["A cat.", "The dog sat down on the mat."]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    lengths = [len(phonemize(text)) for text in texts]
    assert batch["input_ids"].shape == (2, max(lengths))
    assert batch["attention_mask"].sum(dim=1).tolist() == lengths
    assert torch.all(batch["input_ids"][batch["attention_mask"] == 0] == 0)
    assert batch["input_ids"][1].tolist() == tokenizer(texts[1])["input_ids"]


def test_tokenizer_phonemes_input():
    tokenizer = NS2PhonemeTokenizer()
    assert tokenizer.encode_phonemes(["k", "ˈæ", "t"]) == tokenizer("cat")["input_ids"]
    batch = tokenizer(phonemes=[["k", "ˈæ", "t"], ["d", "ˈɔ", "ɡ", "z", "."]], padding=True, return_tensors="pt")
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert tokenizer(phonemes=["k", "ˈæ", "t"])["input_ids"] == tokenizer("cat")["input_ids"]
    with pytest.raises(TextInputError):
        tokenizer.encode_phonemes([])
    with pytest.raises(TypeError):
        tokenizer.encode_phonemes("k æ t")
    with pytest.raises(ValueError, match="either text or phonemes"):
        tokenizer("cat", phonemes=["k"])


def test_tokenizer_empty_text_errors():
    tokenizer = NS2PhonemeTokenizer()
    for text in ["", "   "]:
        with pytest.raises(ValueError, match="text is empty"):
            tokenizer(text)
    with pytest.raises(ValueError, match="no pronounceable content"):
        tokenizer("...")


def test_unknown_phonemes(caplog):
    festival = NS2PhonemeTokenizer.from_phonemes(["pau", "hh", "ax", "l", "ow", "hh"])
    assert festival.get_vocab() == {"<pad>": 0, "<unk>": 1, "pau": 2, "hh": 3, "ax": 4, "l": 5, "ow": 6}
    with caplog.at_level(logging.WARNING):
        assert festival.encode_phonemes(["hh", "zz", "zz", "ow"]) == [3, 1, 1, 6]
    assert caplog.text.count("'zz' is not in the vocabulary") == 1  # warned once per symbol
    strict = NS2PhonemeTokenizer.from_phonemes(["hh", "ow"], strict=True)
    with pytest.raises(UnknownPhonemeError, match="'zz'"):
        strict.encode_phonemes(["hh", "zz"])
    with pytest.raises(ValueError, match="without spaces"):
        NS2PhonemeTokenizer.from_phonemes(["a b"])


def test_bad_vocabulary_file(tmp_path):
    path = tmp_path / "vocab.json"
    path.write_text(json.dumps({"<unk>": 0, "<pad>": 1, "a": 2}), encoding="utf-8")
    with pytest.raises(ValueError, match="must have id 0"):
        NS2PhonemeTokenizer(vocab_file=path)
    path.write_text(json.dumps({"<pad>": 0, "<unk>": 1, "a": 5}), encoding="utf-8")
    with pytest.raises(ValueError, match="each used once"):
        NS2PhonemeTokenizer(vocab_file=path)


def test_save_and_load_round_trip(tmp_path):
    text = "Scintillate, scintillate, globule vivific!"
    tokenizer = NS2PhonemeTokenizer()
    tokenizer.save_pretrained(tmp_path / "default")
    loaded = NS2PhonemeTokenizer.from_pretrained(tmp_path / "default")
    assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert loaded.get_vocab() == tokenizer.get_vocab()

    festival = NS2PhonemeTokenizer.from_phonemes(["pau", "hh", "ax", "l", "ow"], strict=True)
    festival.save_pretrained(tmp_path / "festival")
    loaded = NS2PhonemeTokenizer.from_pretrained(tmp_path / "festival")
    assert loaded.get_vocab() == festival.get_vocab() and loaded.strict
    assert loaded.encode_phonemes(["hh", "ax", "l", "ow", "pau"]) == [3, 4, 5, 6, 2]


def test_register_auto_tokenizer(tmp_path):
    class ThrowawayConfig(PreTrainedConfig):
        model_type = "ns2-text-test"

    AutoConfig.register(ThrowawayConfig.model_type, ThrowawayConfig, exist_ok=True)
    register_auto_tokenizer(ThrowawayConfig)
    register_auto_tokenizer(ThrowawayConfig)  # idempotent
    ThrowawayConfig().save_pretrained(tmp_path)
    NS2PhonemeTokenizer.from_phonemes(["a", "b"]).save_pretrained(tmp_path)
    # Resolve through the config's model type, not the class name in tokenizer_config.json.
    config_file = tmp_path / "tokenizer_config.json"
    tokenizer_config = json.loads(config_file.read_text(encoding="utf-8"))
    del tokenizer_config["tokenizer_class"]
    config_file.write_text(json.dumps(tokenizer_config), encoding="utf-8")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(tokenizer, NS2PhonemeTokenizer)
    assert tokenizer.encode_phonemes(["b", "a"]) == [3, 2]


def test_corpus_transcripts_have_no_unknown_phones(corpus_dir):
    with open(corpus_dir / "metadata.csv", encoding="utf-8", newline="") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    assert len(texts) == 1280
    tokenizer = NS2PhonemeTokenizer(strict=True)  # an unknown phone raises
    phones = set(gruut_phone_inventory())
    for text, ids in zip(texts, tokenizer(texts)["input_ids"]):
        assert tokenizer.unk_token_id not in ids
        assert tokenizer.convert_ids_to_tokens(ids[0]) in phones, f"{text!r} does not start with a phone"


def test_phones_are_told_from_boundaries_punctuation_and_special_tokens():
    from ns2_hf.text import SENTENCE_PUNCTUATION, WORD_BOUNDARY, is_phone, is_voiced

    tokenizer = NS2PhonemeTokenizer()
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("When a camel flies, it's far!")["input_ids"])
    phones = [token for token in tokens if is_phone(token)]
    assert phones and all(token not in (WORD_BOUNDARY, *SENTENCE_PUNCTUATION) for token in phones)
    assert not any(is_phone(token) for token in (WORD_BOUNDARY, ",", "!", tokenizer.pad_token, ""))
    assert is_phone("ˈæ") and is_phone("t͡ʃ") and not is_voiced("t͡ʃ") and is_voiced("ˈæ")
