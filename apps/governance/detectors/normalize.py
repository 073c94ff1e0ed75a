"""Text normalisation for the detectors, keeping a map back to the original offsets.

Attackers hide words from pattern lists with invisible characters (zero-width, bidi controls, Unicode
tag characters), look-alike letters from other scripts (Cyrillic ``о`` in ``ignоre``), compatibility
forms (fullwidth ``ｉｇｎｏｒｅ``, mathematical bold) and accents. ``normalize`` removes the invisible
characters and folds the rest one character to one character into lowercase ASCII, so every offset in
the result maps back to the original text. Pure ASCII input (the common case) takes a fast path.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import lru_cache

# Default-ignorable and format characters that render as nothing: zero-width space/joiners, soft
# hyphen, bidi embeddings and isolates, word joiner, variation selectors, BOM, Unicode tag characters.
INVISIBLE_RE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e007f]"
)
TAG_RE = re.compile("[\U000e0020-\U000e007e]+")
# A word (a run of word, Greek or Cyrillic characters) holding both a Latin letter and a Greek or
# Cyrillic character. Tried only where a word starts, each lookahead reading no further than the
# word's end: linear in the text. (The pattern it replaces, \w*(?:[a-zA-Z]\w*[...]|...)\w*,
# backtracked from every character of every word: "aЖ " and 1,000 more "a" took 6 s.)
_MIXED_WORD_RE = re.compile(
    "(?<![\\w\u0370-\u052f])(?=[\\w\u0370-\u052f]*?[a-zA-Z])(?=[\\w\u0370-\u052f]*?[\u0370-\u052f])"
    "[\\w\u0370-\u052f]+"
)
_GREEK_OR_CYRILLIC_RE = re.compile("[\u0370-\u052f]")
_LATIN_RE = re.compile("[a-zA-Z]")
# A Greek or Cyrillic letter touching a Latin one: the cheap test for a disguised word.
_MIXED_PAIR_RE = re.compile("[\u0370-\u052f](?:(?<=[a-zA-Z].)|(?=[a-zA-Z]))")

# Look-alikes that NFKD does not fold (Unicode's confusables for the Latin letters attacks use).
CONFUSABLES = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w",
    "ӏ": "l", "һ": "h", "ɡ": "g", "ь": "b", "Ь": "b", "ı": "i", "А": "a", "В": "b", "Е": "e", "К": "k",
    "М": "m", "Н": "h", "О": "o",
    "Р": "p", "С": "c", "Т": "t", "Х": "x", "У": "y", "І": "i", "Ј": "j", "Ѕ": "s", "Ԁ": "d",
    # Greek
    "α": "a", "ο": "o", "ρ": "p", "ν": "v", "ε": "e", "ι": "i", "κ": "k", "τ": "t", "υ": "u", "χ": "x",
    "ϲ": "c", "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m", "Ν": "n",
    "Ο": "o", "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x",
}  # fmt: skip
# Typographic punctuation folded to the ASCII that patterns are written with.
PUNCTUATION = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u00a0": " ", "\u2007": " ", "\u202f": " ", "\u3000": " ",
}  # fmt: skip
_FOLD_RANGES = (
    (0x80, 0x250),  # Latin-1 and Latin Extended-A/B: accents
    (0x1D00, 0x1F00),  # phonetic and Latin Extended Additional
    (0x2000, 0x2C00),  # letterlike, enclosed alphanumerics, super/subscripts
    (0xFF00, 0xFFF0),  # fullwidth forms
    (0x1D400, 0x1D800),  # mathematical alphanumerics
    (0x1F100, 0x1F200),  # enclosed alphanumeric supplement
)


@lru_cache(maxsize=1)
def fold_table() -> dict[int, str]:
    """Each character that NFKD turns into one ASCII character (accents dropped), lowercased."""
    table: dict[int, str] = {}
    for lo, hi in _FOLD_RANGES:
        for cp in range(lo, hi):
            decomposed = unicodedata.normalize("NFKD", chr(cp))
            base = "".join(c for c in decomposed if not unicodedata.combining(c))
            if len(base) == 1 and base.isascii() and base.isprintable() and base != chr(cp):
                table[cp] = base.lower()
    table.update({ord(k): v for k, v in PUNCTUATION.items()})
    table[0x130] = "i"  # "İ".lower() is two characters; fold it first
    table[0xDF] = "s"  # German sharp s: one character for one
    return table


# Characters above the Basic Multilingual Plane: the Unicode tag characters and the mathematical letters.
_ASTRAL_RE = re.compile("[\U00010000-\U0010ffff]")


@lru_cache(maxsize=1)
def bmp_fold_table() -> str:
    """``fold_table`` for the Basic Multilingual Plane as a string indexed by code point, unmapped
    characters mapping to themselves (128 KB): ``str.translate`` indexes a string in C, where with a
    dict it looks every non-ASCII character up (see docs/benchmarks.md)."""
    table = fold_table()
    return "".join(table.get(cp, chr(cp)) for cp in range(0x10000))


@lru_cache(maxsize=1)
def confusables_table() -> dict[int, str]:
    return {ord(k): v for k, v in CONFUSABLES.items()}


@dataclass(frozen=True)
class Normalized:
    """``text`` is the folded text; ``removed`` the original offsets of the invisible characters dropped."""

    original: str
    text: str
    removed: tuple[int, ...] = ()
    lookalikes: int = 0  # characters of other scripts folded inside Latin words
    hidden_tags: str = ""  # ASCII smuggled in Unicode tag characters, decoded
    _shifts: tuple[int, ...] = field(default=(), repr=False)

    @property
    def invisible(self) -> int:
        return len(self.removed)

    def offset(self, i: int) -> int:
        """Original offset of ``text[i]``."""
        return i + bisect_right(self._shifts, i) if self._shifts else i

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original ``(start, end)`` of ``text[start:end]``."""
        if not self._shifts:
            return (start, end)
        end = max(end, start + 1)
        return (self.offset(start), self.offset(end - 1) + 1)


def normalize(text: str) -> Normalized:
    if text.isascii():
        return Normalized(text, text.lower())
    astral = _ASTRAL_RE.search(text) is not None
    hidden = "".join(chr(ord(c) - 0xE0000) for run in TAG_RE.findall(text) for c in run) if astral else ""
    removed = tuple(m.start() for m in INVISIBLE_RE.finditer(text))
    cleaned = INVISIBLE_RE.sub("", text) if removed else text
    # the k-th removed character sat just before cleaned offset removed[k] - k
    shifts = tuple(r - k for k, r in enumerate(removed))
    folded = cleaned.translate(fold_table() if astral else bmp_fold_table())
    lookalikes = 0
    if _MIXED_PAIR_RE.search(folded) is not None:
        confusables = confusables_table()

        def fold_word(match: re.Match[str]) -> str:
            nonlocal lookalikes
            word = match.group(0)
            mapped = word.translate(confusables)
            lookalikes += sum(1 for a, b in zip(word, mapped, strict=True) if a != b)
            return mapped

        # Only inside words that mix them with Latin letters: Russian or Greek prose stays as it is. A word
        # holds no newline, so only the lines with both kinds of letter are searched for one.
        lines = folded.split("\n")
        for i, line in enumerate(lines):
            if _GREEK_OR_CYRILLIC_RE.search(line) is not None and _LATIN_RE.search(line) is not None:
                lines[i] = _MIXED_WORD_RE.sub(fold_word, line)
        folded = "\n".join(lines)
    lowered = folded.lower()
    if len(lowered) != len(folded):  # a character whose lowercase is longer: keep it as it is
        lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in folded)
    return Normalized(text, lowered, removed, lookalikes, hidden, shifts)


def model_text(text: str) -> str:
    """What the embedding model sees: the same normalisation (MiniLM is uncased anyway)."""
    return normalize(text).text
