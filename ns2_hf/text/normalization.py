"""English text normalization: written text → words a grapheme-to-phoneme model can read.

`normalize_text` is deterministic and applies these steps in order:

1. Unicode NFKC; accents are stripped from Latin letters ("café" → "cafe") and the ligatures
   æ, œ, ß are spelled out, because the English G2P only knows ASCII spellings.
2. Quotes and dashes are unified: curly single quotes and primes become `'` (kept, it is the
   apostrophe of "don't"); double quotes of every kind are removed; a dash used as punctuation
   (em/en dash, `--`, a hyphen with spaces around it) becomes " — "; a hyphen inside a word
   ("well-known") is kept. Brackets become commas (an aside is read with pauses).
3. Numbers are written out with `num2words` (American style, without "and" or commas):
   currency ("$5.50" → "five dollars and fifty cents", "$2 million" → "two million dollars";
   $ £ € ¥), percent, clock times ("3:05" → "three oh five", "3:00" → "three o'clock",
   "5pm" → "five PM"), ordinals ("21st"), numbers with thousands separators ("1,500" → "one
   thousand five hundred"), dates m/d/y and yyyy-mm-dd ("3/4/2024" → "March fourth twenty
   twenty-four"), fractions ("3/4" → "three quarters"), ranges with a dash between numbers
   ("1990–2000", "3-2" → "... to ..."), decades ("1990s", "'90s"), years (a bare 4-digit number from
   1100 to 2099: "1984" → "nineteen eighty-four"), decimals ("3.14" → "three point one four"),
   negatives and plain cardinals. "No. 5" → "number five", "#5" → "number five".
   No digit survives normalization.
4. Abbreviations: titles (Mr., Mrs., Ms., Dr., Prof., St. before a name → "Saint", otherwise
   "Street", ...), etc., e.g., i.e., vs., Inc., months, and dotted initialisms ("U.S." → "US",
   which the G2P spells letter by letter). An abbreviation's period is kept as a sentence end
   only where one is plausible: at the end of the text, or, for abbreviations that are not titles
   or initials, before a capitalized word ("pears, etc. Then" keeps the period).
5. Symbols: & → "and", @ → "at", + → "plus", = → "equals", ° → "degrees", / between words →
   "slash". Every other character that is not a letter, an apostrophe, a hyphen inside a word or
   sentence punctuation is dropped.
6. Sentence punctuation `, . ! ? ; :` and "—" is kept; "..." becomes "."; a run of marks
   ("?!", ", .") becomes its strongest mark (? ! . ; : — ,); marks before the first word and a
   trailing comma or dash are dropped. Whitespace is collapsed and stripped. Letter case is kept (the G2P uses it for
   initialisms and parts of speech).
"""

from __future__ import annotations

import re
import unicodedata

from num2words import num2words

SENTENCE_PUNCTUATION = (",", ".", "!", "?", ";", ":", "—")
"""Punctuation marks `normalize_text` keeps; the G2P turns each into a token (a pause)."""

# Strongest first: a run of marks collapses to the first of these it contains.
_PUNCTUATION_STRENGTH = ("?", "!", ".", ";", ":", "—", ",")

_LIGATURES = {"æ": "ae", "Æ": "Ae", "œ": "oe", "Œ": "Oe", "ß": "ss"}
_SINGLE_QUOTES = "‘’‚‛′`´‹›"
_DOUBLE_QUOTES = "“”„‟″«»\""
_HYPHENS = "‐‑"  # typographic hyphens → "-"
_DASHES = "‒–—―"  # figure/en/em dash, horizontal bar
_MINUS = "−"

_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_CURRENCIES = {
    # symbol: (major singular, major plural, minor singular, minor plural); no minor unit for yen
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
    "¥": ("yen", "yen", None, None),
}
_SCALES = ("thousand", "million", "billion", "trillion")

# Titles stand before a name, so their period never ends a sentence except at the end of the text.
_TITLES = {
    "Mr": "Mister",
    "Mrs": "Missus",
    "Ms": "Miz",
    "Dr": "Doctor",
    "Prof": "Professor",
    "Rev": "Reverend",
    "Gen": "General",
    "Capt": "Captain",
    "Col": "Colonel",
    "Lt": "Lieutenant",
    "Sgt": "Sergeant",
    "Gov": "Governor",
    "Sen": "Senator",
    "Hon": "Honorable",
    "Mt": "Mount",
    "Ft": "Fort",
}
# Other abbreviations: their period also ends a sentence before a capitalized word.
_ABBREVIATIONS = {
    "etc": "et cetera",
    "vs": "versus",
    "Jr": "Junior",
    "Sr": "Senior",
    "Inc": "Incorporated",
    "Ltd": "Limited",
    "Co": "Company",
    "Corp": "Corporation",
    "Ave": "Avenue",
    "Blvd": "Boulevard",
    "Rd": "Road",
    "approx": "approximately",
    "dept": "department",
    "Jan": "January",
    "Feb": "February",
    "Mar": "March",
    "Apr": "April",
    "Aug": "August",
    "Sep": "September",
    "Sept": "September",
    "Oct": "October",
    "Nov": "November",
    "Dec": "December",
}
_LATIN_ABBREVIATIONS = {"e.g.": "for example", "i.e.": "that is"}


def _words(number: int, to: str = "cardinal") -> str:
    """`num2words` in American style: no commas, no "and" ("one hundred five")."""
    text = num2words(number, lang="en", to=to)
    return text.replace(",", "").replace(" and ", " ")


def _cardinal(digits: str) -> str:
    """Cardinal words for a string of digits; more than 15 digits are read one by one."""
    if len(digits) > 15:
        return " ".join(_words(int(d)) for d in digits)
    return _words(int(digits))


def _decimal(integer: str, fraction: str) -> str:
    """ "3", "14" → "three point one four"; an empty integer part is read as "point five"."""
    head = _cardinal(integer) + " " if integer else ""
    return head + "point " + " ".join(_words(int(d)) for d in fraction)


def _number(text: str) -> str:
    """Words for "12", "1,500" or "2.5"."""
    text = text.replace(",", "")
    if "." in text:
        integer, fraction = text.split(".", 1)
        return _decimal(integer, fraction)
    return _cardinal(text)


def _plural(noun: str) -> str:
    return noun[:-1] + "ies" if noun.endswith("y") else noun + "s"


def _currency(match: re.Match) -> str:
    major, majors, minor, minors = _CURRENCIES[match.group("symbol")]
    amount, scale = match.group("amount"), match.group("scale")
    if scale:  # "$2.5 million" → "two point five million dollars"
        return f"{_number(amount)} {scale} {majors}"
    amount = amount.replace(",", "")
    integer, _, fraction = amount.partition(".")
    if fraction and (len(fraction) > 2 or minor is None):
        return f"{_number(amount)} {majors}"
    units = int(integer or "0")
    cents = int(fraction.ljust(2, "0")) if fraction else 0
    parts = []
    if units or not cents:
        parts.append(f"{_cardinal(str(units))} {major if units == 1 else majors}")
    if cents:
        parts.append(f"{_cardinal(str(cents))} {minor if cents == 1 else minors}")
    return " and ".join(parts)


def _time(match: re.Match) -> str:
    hours, minutes = int(match.group(1)), int(match.group(2))
    if hours > 23 or minutes > 59:
        return match.group(0).replace(":", " ")
    if minutes == 0:
        return f"{_words(hours)} o'clock"
    if minutes < 10:
        return f"{_words(hours)} oh {_words(minutes)}"
    return f"{_words(hours)} {_words(minutes)}"


def _year(year: int) -> str:
    return _words(year, to="year")


def _date(month: int, day: int, year: str | None) -> str | None:
    """`None` when the numbers cannot be a date."""
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    text = f"{_MONTHS[month - 1]} {_words(day, to='ordinal')}"
    if year is not None:
        text += " " + _year(int(year) + 2000 if len(year) == 2 else int(year))
    return text


def _slash_date(match: re.Match) -> str:
    date = _date(int(match.group(1)), int(match.group(2)), match.group(3))
    return date if date is not None else " slash ".join(_cardinal(g) for g in match.groups())


def _iso_date(match: re.Match) -> str:
    date = _date(int(match.group(2)), int(match.group(3)), match.group(1))
    return date if date is not None else " ".join(_cardinal(g) for g in match.groups())


def _fraction(match: re.Match) -> str:
    numerator, denominator = int(match.group(1)), int(match.group(2))
    if denominator == 0:
        return f"{_words(numerator)} slash zero"
    if denominator == 1:
        return f"{_words(numerator)} over one"
    name = {2: "half", 4: "quarter"}.get(denominator) or _words(denominator, to="ordinal")
    if numerator != 1:
        name = "halves" if denominator == 2 else _plural(name)
    return f"{_words(numerator)} {name}"


def _decade(match: re.Match) -> str:
    if match.group(1):  # "'90s"
        return _plural(_words(int(match.group(2))))
    return _plural(_year(int(match.group(2))))


def _year_or_cardinal(match: re.Match) -> str:
    value = int(match.group(0))
    return _year(value) if 1100 <= value <= 2099 else _cardinal(match.group(0))


def _normalize_numbers(text: str) -> str:
    text = re.sub(r"(?:\bNo\.|#)\s?(?=\d)", "number ", text)
    text = re.sub(
        r"(?P<symbol>[$£€¥])\s?(?P<amount>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d*\.?\d+)"
        r"(?:\s(?P<scale>" + "|".join(_SCALES) + r")\b)?",
        _currency,
        text,
    )
    text = re.sub(r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d*\.?\d+)\s?%", lambda m: _number(m.group(1)) + " percent", text)
    text = re.sub(r"\b(\d{1,2}):(\d{2})\b", _time, text)
    text = re.sub(r"\b(\d{1,2})\s?([ap])m\b", lambda m: f"{_words(int(m.group(1)))} {m.group(2).upper()}M", text, flags=re.I)
    text = re.sub(r"\b(\d+)(?:st|nd|rd|th)\b", lambda m: _words(int(m.group(1)), to="ordinal"), text)
    text = re.sub(r"\b\d{1,3}(?:,\d{3})+(?:\.\d+)?\b", lambda m: _number(m.group(0)), text)
    text = re.sub(r"\b(\d{4})-(\d{2})-(\d{2})\b", _iso_date, text)
    text = re.sub(r"\b(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})\b", _slash_date, text)
    text = re.sub(r"\b(\d+)/(\d+)\b", _fraction, text)
    text = re.sub(r"(\d)-(?=\d)", r"\1 to ", text)
    text = re.sub(r"(')?\b(\d{1,3}0)s\b", _decade, text)
    text = re.sub(r"(?<![\w.])[-−](?=\.?\d)", "minus ", text)
    text = re.sub(r"(\d*)\.(\d+)", lambda m: _decimal(m.group(1), m.group(2)), text)
    text = re.sub(r"\b\d{4}\b", _year_or_cardinal, text)
    text = re.sub(r"\d+", lambda m: f" {_cardinal(m.group(0))} ", text)
    return text


def _end_or_capital(text: str, end: int, allow_capital: bool) -> bool:
    """Whether an abbreviation ending at `end` also ends a sentence."""
    rest = text[end:].lstrip()
    return not rest or (allow_capital and rest[0].isupper())


def _normalize_abbreviations(text: str) -> str:
    for abbreviation, expansion in _LATIN_ABBREVIATIONS.items():
        text = re.sub(r"\b" + re.escape(abbreviation) + r"(?=\W|$)", expansion, text, flags=re.I)

    def title(match: re.Match) -> str:
        word = match.group(1)
        if word == "St":
            following = match.string[match.end() :].lstrip()
            expansion = "Saint" if following[:1].isupper() else "Street"
        else:
            expansion = _TITLES[word]
        return expansion + ("." if _end_or_capital(match.string, match.end(), allow_capital=False) else "")

    text = re.sub(r"\b(" + "|".join(list(_TITLES) + ["St"]) + r")\.", title, text)

    def abbreviation(match: re.Match) -> str:
        ends = _end_or_capital(match.string, match.end(), allow_capital=True)
        return _ABBREVIATIONS[match.group(1)] + ("." if ends else "")

    text = re.sub(r"\b(" + "|".join(_ABBREVIATIONS) + r")\.", abbreviation, text)
    text = re.sub(r"\bvs\b", "versus", text)

    def initialism(match: re.Match) -> str:
        letters = match.group(0).replace(".", "").upper()
        return letters + ("." if _end_or_capital(match.string, match.end(), allow_capital=False) else "")

    text = re.sub(r"\b(?:[A-Za-z]\.){2,}", initialism, text)
    # A middle initial between two names: "John F. Kennedy" (not the pronoun "I").
    text = re.sub(r"\b([A-Z][a-z]+ [A-HJ-Z])\.(?= [A-Z])", r"\1", text)
    return text


def _strip_accents(text: str) -> str:
    out = []
    for char in text:
        if char in _LIGATURES:
            out.append(_LIGATURES[char])
            continue
        decomposed = unicodedata.normalize("NFD", char)
        out.append(decomposed[0] if decomposed[0].isascii() and decomposed[0].isalpha() else char)
    return "".join(out)


def _collapse_punctuation(match: re.Match) -> str:
    marks = match.group(0)
    strongest = next(mark for mark in _PUNCTUATION_STRENGTH if mark in marks)
    return " — " if strongest == "—" else strongest + " "


def normalize_text(text: str) -> str:
    """Normalize English text for the G2P (see the module docstring for the rules, in order).

    Args:
        text: any Unicode string.

    Returns:
        The normalized text: letters, apostrophes, in-word hyphens, the marks of
        `SENTENCE_PUNCTUATION` and single spaces; no digits. Empty if nothing readable is left.

    Example:
        >>> normalize_text("Dr. Smith paid $5.50 on 3/4 — 50% more!")
        'Doctor Smith paid five dollars and fifty cents on three quarters — fifty percent more!'
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    text = unicodedata.normalize("NFKC", text)
    text = _strip_accents(text)

    # Quotes, dashes, brackets.
    text = re.sub(f"[{_SINGLE_QUOTES}]", "'", text)
    text = re.sub(f"[{_DOUBLE_QUOTES}]", " ", text)
    text = re.sub(f"[{_HYPHENS}]", "-", text).replace(_MINUS, "-")
    text = re.sub(r"(\d)\s?[‒–]\s?(?=\d)", r"\1 to ", text)
    text = re.sub(f"[{_DASHES}]|--+|(?<=\\s)-(?=\\s)", " — ", text)
    text = re.sub(r"[()\[\]{}]", " , ", text)

    text = _normalize_numbers(text)
    text = _normalize_abbreviations(text)

    # Symbols.
    text = re.sub(r"°\s?C\b", " degrees Celsius ", text)
    text = re.sub(r"°\s?F\b", " degrees Fahrenheit ", text)
    for symbol, word in (("&", "and"), ("@", "at"), ("+", "plus"), ("=", "equals"), ("°", "degrees")):
        text = text.replace(symbol, f" {word} ")
    text = re.sub(r"(?<=\w)\s?/\s?(?=\w)", " slash ", text)

    # Keep letters, apostrophes, in-word hyphens and sentence punctuation.
    text = "".join(
        char if (char.isalpha() or char in "'-" or char in SENTENCE_PUNCTUATION) else " " for char in text
    )
    text = re.sub(r"(?<![A-Za-z])-|-(?![A-Za-z])", " ", text)
    text = re.sub(r"(?<![A-Za-z])'(?![A-Za-z])", " ", text)
    text = re.sub(r"[,.!?;:—](?:\s*[,.!?;:—])*", _collapse_punctuation, text)
    text = re.sub(r"\s+([,.!?;:])", r"\1", text)
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"^[\s,.!?;:—]+|[\s,—]+$", "", text)
