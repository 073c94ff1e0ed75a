"""``scan_text``: prompt injection, jailbreak and harmful-request detection over free text.

The fast scan is rules only (``rules.RULES`` over several views of the normalised text, plus payloads
decoded from base64, hex, binary, URL-encoding and Unicode tag characters); the full scan adds the
embedding classifier of ``model.py``. Every span is in the original text.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import re
import string
import urllib.parse
from bisect import bisect_right, insort
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cached_property
from itertools import accumulate, compress
from typing import Any

from apps.governance.detectors.findings import Finding
from apps.governance.detectors.normalize import INVISIBLE_RE, TAG_RE, Normalized, normalize
from apps.governance.detectors.rules import (
    GATES,
    GUARD_WINDOW,
    LEADS,
    META,
    NEAR,
    PLACES,
    PRECHECKS,
    REQUIRES,
    RULES,
    SENTENCE_END,
    STARTS,
    SYMBOL_SEARCH,
    SYMBOLS,
    Gate,
    Near,
    Rule,
    _NonAscii,
)

MAX_HITS_PER_RULE = 3
FLAG_SEVERITY = 5  # what the policies and the benchmark count as flagged
WEAK_SEVERITY = 3
MAX_DECODE_DEPTH = 2
MAX_CANDIDATES = 16  # encoded blobs decoded per text: bounds the work a hostile input can cause
MODEL_DETECTOR = "model:minilm-mlp"
NATURAL_SAMPLE = 2000
# Bounds the positions tried for the punctuation-led rules on hostile input (a text of brackets).
MAX_STARTS = 4096
# The leetspeak view's index is built from the base view's while it has at most one changed word per this
# many characters (each costs a few Python steps, a whole index about 0.05 us per character).
LEET_INDEX_WORDS = 64
# The leetspeak view is read within this many characters of a place its gates find (a leet digit or symbol
# in or next to a word): a digit far from any such word is a number, not leetspeak.
LEET_REACH = 300

_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "6": "g", "7": "t", "8": "b", "9": "g", "@": "a",
     "$": "s", "\u20ac": "e", "+": "t", "|": "i", "!": "i"}
)  # fmt: skip
_LEET_CHARS = "".join(map(chr, _LEET))
# The same on UTF-8 bytes (str.translate with a dict looks up every non-ASCII character: 1 ms on 10,000
# characters of Russian; a UTF-8 sequence has no ASCII byte in it, so the bytes hold the same ASCII).
_LEET_BYTES = bytes.maketrans(
    "".join(c for c in _LEET_CHARS if c.isascii()).encode(),
    "".join(_LEET[ord(c)] for c in _LEET_CHARS if c.isascii()).encode(),
)
# A leet digit next to a letter, or a leet symbol inside a word ("w!th", "rep|y", "+he"). Two patterns,
# each starting with its character class, so that each search skips ahead in C; one alternation of the
# two tried both at every position (twice the time on prose).
_LEET_GATES = (
    re.compile(r"[0134567@$9](?:(?<=[a-z][0134567@$9])|(?=[a-z]))"),
    re.compile(r"[\u20ac+|!](?:(?<=[a-z][\u20ac+|!])(?=[a-z])|(?<![\w])(?=[a-z]{2}))"),
)
# Text written with a backslash before every character ("\\i\\g\\n\\o\\r\\e").
BACKSLASH_SHARE = 0.3
# Runs of single letters split by one separator each: "i g n o r e", "I.g.n.o.r.e", "i-g-n-o-r-e".
_SPACED_GATE = re.compile(r"[ .\-_*/|][a-z][ .\-_*/|][a-z][ .\-_*/|][a-z][ .\-_*/|]")
_SPACED_RUN = re.compile(r"(?<![\w])(?:[a-z][ .\-_*/|]){3,}[a-z](?![\w])")
_STOPWORDS = re.compile(r"\b(?:the|and|you|to|of|a|is|in|it|your|all|that|for|this|are|be|with|me|my|not)\b")
_WORD = re.compile(r"[a-z]{2,}")
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{16,}={0,2}(?![A-Za-z0-9+/=_-])")
# Escaped bytes (\\x49\\x67...) or 8+ hex pairs, not inside a longer hex run. Each alternative's first
# character is taken by one class and checked behind, so the search skips in C to a backslash or a hex
# digit (the plain alternation, with a lookbehind first, tried both at every position: 3x slower).
_HEX = re.compile(
    r"[\\0-9a-fA-F](?:(?<=\\)x[0-9a-fA-F]{2}(?:\\x[0-9a-fA-F]{2}){5,}"
    r"|(?<![0-9a-fA-F].)(?<=[0-9a-fA-F])[0-9a-fA-F][\s:,]?(?:[0-9a-fA-F]{2}[\s:,]?){7,}(?![0-9a-fA-F]))"
)
# Hex of readable text has a digit 2-7 every second character: look for that first (fast to skip).
_HEX_GATE = re.compile(r"[2-7][0-9a-fA-F][ :,]?[2-7][0-9a-fA-F][ :,]?[2-7][0-9a-fA-F][ :,]?[2-7][0-9a-fA-F]")
# 4+ bytes written in bits; the first byte unrolled so the search skips in C to a 0 or 1 (8x faster).
_BINARY = re.compile(r"[01](?<![01].)[01]{7}[\s,']*(?:[01]{8}[\s,']*){3,}")
# 4+ escaped bytes; the first written out, so that the search skips in C to a "%" (with the group
# first it tried the group at every character).
_URLENC = re.compile(r"%[0-9a-fA-F]{2}(?:%[0-9a-fA-F]{2}){3,}[^\s]*")
# Text written as HTML character references: "&#73;&#103;&#110;..." or "&#x49;&#x67;...", the first
# written out as for _URLENC.
_HTML_REF = r"&#(?:[0-9]{1,7}|[xX][0-9a-fA-F]{1,6});\s?"
_HTML_REFS = re.compile(rf"{_HTML_REF}(?:{_HTML_REF}){{3,}}")
_INVISIBLE_IN_WORD = re.compile("\\w[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]+\\w")


def _sentence_around(text: str, start: int, end: int) -> str:
    lo = max(0, start - GUARD_WINDOW)
    hi = min(len(text), end + GUARD_WINDOW)
    before = text[lo:start]
    cut = None
    for m in SENTENCE_END.finditer(before):
        cut = m.end()
    after = SENTENCE_END.search(text, end, hi)
    return text[lo + (cut or 0) : after.start() if after else hi]


def _natural(text: str) -> float:
    """Share of stopwords among words: how much ``text`` reads like plain English."""
    words = len(_WORD.findall(text)) + text.count(" a ")
    return len(_STOPWORDS.findall(text)) / words if words else 0.0


def _collapse_spaced(text: str) -> tuple[str, Callable[[], list[int]]] | None:
    """The text with its spaced-letter runs closed up, and a function giving each of its characters'
    offset in ``text`` (built only when a rule matches this view: most views never need it)."""
    if not (len(text) >= 7 and (_SPACED_GATE.search(text) or _SPACED_GATE.match(" " + text[:7]))):
        return None
    runs = list(_SPACED_RUN.finditer(text))
    if not runs:
        return None
    out: list[str] = []
    pos = 0
    for m in runs:
        out.append(text[pos : m.start()])
        out.append(m.group()[::2])
        pos = m.end()
    out.append(text[pos:])

    def offsets() -> list[int]:
        index: list[int] = []
        pos = 0
        for m in runs:
            index.extend(range(pos, m.start()))
            index.extend(range(m.start(), m.end(), 2))
            pos = m.end()
        index.extend(range(pos, len(text)))
        return index

    return "".join(out), offsets


def _leet(text: str) -> str:
    if text.isascii():
        return text.translate(_LEET)
    raw = text.encode("utf-8", "surrogatepass").translate(_LEET_BYTES)
    return raw.decode("utf-8", "surrogatepass").replace("\u20ac", "e")


def _leet_windows(base: str, text: str) -> list[int] | None:
    """Where the leetspeak view ``text`` of ``base`` is read: the stretches within LEET_REACH of a place a
    leet gate finds, widened to whole words, as sorted bounds [start, end, start, end, ...]; None where
    that is the whole view."""
    # a place in every LEET_REACH characters: every character is within reach of one
    digit, symbol = _LEET_GATES
    for start in range(0, len(base), LEET_REACH):
        found = digit.search(base, start, start + LEET_REACH + 1)  # its lookahead reads one more
        if found is None or found.start() >= start + LEET_REACH:
            found = symbol.search(base, start, start + LEET_REACH + 2)  # two more
            if found is None or found.start() >= start + LEET_REACH:
                break
    else:
        return None
    bounds: list[int] = []
    for at in sorted({m.start() for gate in _LEET_GATES for m in gate.finditer(base)}):
        start, end = max(0, at - LEET_REACH), min(len(text), at + LEET_REACH + 1)
        while start and text[start - 1] in _LOWERCASE and text[start] in _LOWERCASE:
            start -= 1  # not from inside a word
        if end < len(text) and text[end - 1] in _LOWERCASE:
            end = _LETTERS.match(text, end - 1).end()
        if bounds and start <= bounds[-1]:
            bounds[-1] = max(bounds[-1], end)
        else:
            bounds += [start, end]
    return None if bounds == [0, len(text)] else bounds


def _views(norm: Normalized) -> list[tuple[str, str, Callable[[int, int], tuple[int, int]]]]:
    """(name, text, span mapper to the original) for each way the text is read."""
    base = norm.text
    views: list[tuple[str, str, Callable[[int, int], tuple[int, int]]]] = [("", base, norm.span)]
    if any(gate.search(base) for gate in _LEET_GATES):
        views.append(("leetspeak", _leet(base), norm.span))
    if len(base) >= 8 and base.count("\\") > BACKSLASH_SHARE * len(base):
        kept = [i for i, c in enumerate(base) if c != "\\"]

        def unescaped_span(start: int, end: int, kept: list[int] = kept) -> tuple[int, int]:
            end = max(end, start + 1)
            return norm.span(kept[start], kept[min(end, len(kept)) - 1] + 1)

        views.append(("backslash-escaped letters", base.replace("\\", ""), unescaped_span))
    collapsed = _collapse_spaced(base)
    if collapsed is not None:
        text, offsets = collapsed
        index: list[int] = []

        def spaced_span(start: int, end: int) -> tuple[int, int]:
            if not index:
                index.extend(offsets())
            end = max(end, start + 1)
            return norm.span(index[start], index[min(end, len(index)) - 1] + 1)

        views.append(("spaced letters", text, spaced_span))
    # rot13 and reversed payloads are short; reading the first part is enough to tell prose from them
    sample = base[:NATURAL_SAMPLE]
    if len(base) >= 12 and _natural(sample) < 0.08:
        if _reads_as_english(codecs.encode(sample, "rot13")):
            views.append(("rot13", codecs.encode(base, "rot13"), norm.span))
        if _reads_as_english(sample[::-1]):
            n = len(base)
            views.append(("reversed", base[::-1], lambda s, e: norm.span(n - e, n - s)))
    return views


def _reads_as_english(sample: str) -> bool:
    """Enough stopwords, and more than one of them unless the sample is a short phrase: a text in
    another script whose few Latin words happen to rotate into one stopword is not a payload."""
    if _natural(sample) < 0.15:
        return False
    return len(_WORD.findall(sample)) <= 12 or len(set(_STOPWORDS.findall(sample))) >= 2


def _decoded_payloads(text: str) -> list[tuple[str, tuple[int, int], str]]:
    """(encoding, span in ``text``, decoded text) for each blob that decodes to readable text."""
    found: list[tuple[str, tuple[int, int], str]] = []

    def readable(raw: bytes) -> str | None:
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        printable = sum(1 for c in decoded if c.isprintable() or c in "\n\t")
        letters = sum(1 for c in decoded if c.isalpha())
        if len(decoded) >= 4 and printable / len(decoded) > 0.95 and letters / len(decoded) > 0.5:
            return decoded
        return None

    for m in _BASE64.finditer(text):
        if len(found) >= MAX_CANDIDATES:
            break
        blob = m.group(0)
        if blob.isalpha() or blob.isdigit():  # a long word or a number, not base64
            continue
        try:
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), altchars=b"-_" if "-" in blob else None)
        except (binascii.Error, ValueError):
            continue
        decoded = readable(raw)
        if decoded:
            found.append(("base64", m.span(), decoded))
    for m in _HEX.finditer(text) if ("\\x" in text or _HEX_GATE.search(text)) else ():
        if len(found) >= MAX_CANDIDATES:
            break
        digits = re.sub(r"\\x|[\s:,]", "", m.group(0))
        try:
            decoded = readable(bytes.fromhex(digits[: len(digits) // 2 * 2]))
        except ValueError:
            continue
        if decoded:
            found.append(("hex", m.span(), decoded))
    for m in _BINARY.finditer(text) if "0000" in text or "0110" in text or "0111" in text else ():
        bits = re.sub(r"[^01]", "", m.group(0))
        decoded = readable(bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits) - 7, 8)))
        if decoded:
            found.append(("binary", m.span(), decoded))
    for m in _URLENC.finditer(text) if "%" in text else ():
        decoded = urllib.parse.unquote(m.group(0))
        if decoded != m.group(0):
            found.append(("URL-encoding", m.span(), decoded))
    for m in _HTML_REFS.finditer(text) if "&#" in text else ():
        if len(found) >= MAX_CANDIDATES:
            break
        found.append(("HTML character references", m.span(), html.unescape(m.group(0))))
    return found


# Capturing, so that split() keeps the words: [gap, word, gap, word, ..., gap].
_TOKEN_SPLIT = re.compile(r"([a-z]+)")
_LETTERS = re.compile(r"[a-z]+")
_LOWERCASE = frozenset(string.ascii_lowercase)
_LEET_SOURCE = re.compile(f"[{re.escape(_LEET_CHARS)}]")  # the characters _leet translates (to letters)


def _add_starts(starts: dict[str, list[int]], parts: list[str], offset: int = 0) -> None:
    """Adds where each start word of ``parts`` (a _TOKEN_SPLIT split of text from ``offset``) begins."""
    words = parts[1::2]
    # Word k begins where the gaps and words before it end; map, accumulate and compress run in C, leaving a
    # Python step only for the few start words (a loop over every word cost twice this).
    offsets = list(accumulate(map(len, parts), initial=offset))[1::2]
    is_start = list(map(_ALL_STARTS.__contains__, words))
    for word, at in zip(compress(words, is_start), compress(offsets, is_start), strict=True):
        positions = starts.get(word)
        if positions is None:
            starts[word] = [at]
        else:
            positions.append(at)


class _Index:
    """Where the words that can start a rule's match begin in one view, found once for all rules."""

    def __init__(self, text: str) -> None:
        self.text = text
        parts = _TOKEN_SPLIT.split(text)  # whole words only: [a-z]+ runs
        self.present = set(parts[1::2])  # every word of the view, for rules.REQUIRES
        self.words: dict[str, list[int]] = {}
        if not self.present.isdisjoint(_ALL_STARTS):
            _add_starts(self.words, parts)
        self._seen: dict[Gate, bool] = {}
        self._first: dict[Gate, tuple[int, int]] = {}  # where a gate's pattern first matched
        self._base: _Index | None = None
        self._doubtful: frozenset[str] | set[str] = frozenset()
        self.windows: list[int] | None = None  # where starts are taken (rules.STARTS, SYMBOLS): everywhere
        self.stretches = [(0, len(text))]  # the same as (start, end) pairs

    @classmethod
    def leet_of(cls, base: _Index, text: str, windows: list[int] | None = None) -> _Index:
        """The index of ``text``, the leetspeak view of ``base.text``: only the words holding a translated
        character are read again, the rest copied (most of a view's words hold none). With ``windows``
        (bounds from _leet_windows), starts only there."""
        # with windows the starts are taken from them alone: none to carry over from the base view
        index = cls._leet_of(base, text, keep_starts=windows is None)
        index._base = base
        if windows is not None:
            index.windows = windows
            index.stretches = list(zip(windows[0::2], windows[1::2], strict=True))
            index.words = {}
            for k in range(0, len(windows), 2):
                _add_starts(index.words, _TOKEN_SPLIT.split(text[windows[k] : windows[k + 1]]), windows[k])
        return index

    @classmethod
    def _leet_of(cls, base: _Index, text: str, *, keep_starts: bool = True) -> _Index:
        index = cls.__new__(cls)
        index.text = text
        index._seen = {}
        index._first = {}
        index._base = None
        index.windows = None
        index.stretches = [(0, len(text))]
        words = dict(base.words)
        present = set(base.present)
        copied: set[str] = set()

        def positions(word: str) -> list[int]:
            if word not in copied:  # copied on the first change: the base index keeps its own
                words[word] = list(words.get(word, ()))
                copied.add(word)
            return words[word]

        pieces: set[str] = set()
        new: set[str] = set()
        before = base.text
        changed = _LEET_SOURCE.search(before)
        runs, most = 0, len(before) / LEET_INDEX_WORDS
        while changed is not None:
            runs += 1
            # words of digits everywhere (hex, logs): read the whole view, as soon as the words seen so far
            # say there will be too many
            if runs > most or (runs >= 8 and runs * len(before) > 1.5 * most * changed.start()):
                return cls(text)
            # Each translated character is a letter in ``text``: the word holding it runs from the last
            # non-letter before it to the first after it, and ``before`` has the same characters there
            # but for the translated ones (which split it into pieces or are part of no word).
            at = start = changed.start()
            while start and text[start - 1] in _LOWERCASE:
                start -= 1
            end = _LETTERS.match(text, at).end()
            for piece in _LETTERS.finditer(before, start, end):
                pieces.add(piece.group())
                if keep_starts and piece.group() in _ALL_STARTS:
                    positions(piece.group()).remove(piece.start())
            new.add(text[start:end])
            if keep_starts and text[start:end] in _ALL_STARTS:
                insort(positions(text[start:end]), start)
            changed = _LEET_SOURCE.search(before, end)
        for word in copied:
            if not words[word]:
                del words[word]
        present |= new
        index.words = words
        # a superset: a piece may be gone from the view; lacks() checks such words in the text itself
        index.present = present
        index._doubtful = pieces - new
        return index

    def lacks(self, required: Iterable[str]) -> bool:
        """Whether none of ``required`` is a word of the view."""
        if not self._doubtful:
            return self.present.isdisjoint(required)
        common = self.present.intersection(required)
        if not common.issubset(self._doubtful):
            return False
        # the word first, then its ends: a search that begins with a lookbehind tries it at every character
        return not any(re.search(rf"{word}(?![a-z])(?<![a-z]{word})", self.text) for word in common)

    def has(self, pattern: Gate) -> bool:
        """Whether ``pattern`` occurs in the view (searched once per view)."""
        found = self._seen.get(pattern)
        if found is None:
            found = self._seen[pattern] = self._search(pattern)
        return found

    def _search(self, pattern: Gate) -> bool:
        base = self._base
        if base is not None:
            # the leetspeak view holds the base view's characters of other scripts, and the base view's
            # match where no character of it was translated (a gate reads no further than its match)
            if isinstance(pattern, _NonAscii):
                return base.has(pattern)
            if base.has(pattern) and isinstance(pattern, re.Pattern):
                first = base._first[pattern]
                if _LEET_SOURCE.search(base.text, max(0, first[0] - 1), first[1]) is None:
                    return True
        found = pattern.search(self.text)
        if isinstance(found, re.Match):
            self._first[pattern] = found.span()
        return found is not None

    @cached_property
    def joined_words(self) -> str:
        """The view's words joined by newlines: a string of letters occurs in the view iff it occurs in
        this, which is shorter (each word once) to look it up in."""
        return "\n".join(self.present)

    @property
    def tokens(self) -> int:
        return sum(len(v) for v in self.words.values())


# The SYMBOLS that are words or parts of words: each lies inside one of the view's [a-z]+ words.
_LETTER_SYMBOLS = frozenset(
    symbol
    for symbols in SYMBOLS.values()
    for symbol, _ in symbols
    if symbol.isascii() and symbol.isalpha() and symbol.islower()
)
_ALL_STARTS = frozenset(word for words in STARTS.values() for word in words)
_LONGEST_SYMBOL = max(len(symbol) for symbols in SYMBOLS.values() for symbol, _ in symbols)
# As sets: a rule's start words are intersected with the few words the view has, not looked up one by one.
_START_SETS = {name: frozenset(words) for name, words in STARTS.items()}
_NONE: frozenset[str] = frozenset()


def _later_within(near: Near, text: str, start: int, last: int) -> bool:
    """Whether ``near.later`` matches at a place from ``start`` to ``last``: its heads looked for in that
    stretch only (a few hundred characters, a str.find each), each place found tried once."""
    for head in near.heads:
        at = text.find(head, start, last + len(head))
        while at >= 0:
            if near.later.match(text, at) is not None:
                return True
            at = text.find(head, at + 1, last + len(head))
    return False


def _matches(rule: Rule, index: _Index) -> Iterator[re.Match[str]]:
    """The rule's matches, tried only where one can start (rules.STARTS and rules.SYMBOLS)."""
    text = index.text
    required = REQUIRES.get(rule.name)
    if required is not None and index.lacks(required):
        return
    gate = GATES.get(rule.name)
    if gate is not None and not index.has(gate):
        return
    starts: set[int] = set()
    words = index.words
    for word in _START_SETS.get(rule.name, _NONE).intersection(words):
        starts.update(words[word])
    symbols = SYMBOLS.get(rule.name, ())
    places = PLACES.get(rule.name)
    stretches = index.stretches
    # a symbol of n characters occurs at most n times per occurrence str.count counts
    if (
        places is not None
        and len(starts)
        + sum(
            len(symbol) * text.count(symbol, lo, hi + back + len(symbol)) * (back + 1)
            for symbol, back in symbols
            for lo, hi in stretches
        )
        < MAX_STARTS
    ):
        for lo, hi in stretches:
            found = places.search(text, lo)
            while found is not None and found.start() < hi:
                starts.add(found.start())
                found = places.search(text, found.start() + 1)
        symbols = ()
    search = SYMBOL_SEARCH.get(rule.name)
    if search is not None:
        # the same starts as the loop below while it stays under MAX_STARTS (its only bound)
        every = set(starts)
        for lo, hi in stretches:
            end = hi + _LONGEST_SYMBOL  # a plain alternation of words: nothing read past a word
            found = search.search(text, lo, end)
            while found is not None and found.start() < hi and len(every) < MAX_STARTS:
                every.add(found.start())
                found = search.search(text, found.start() + 1, end)
        if len(every) < MAX_STARTS:
            starts, symbols = every, ()
    for symbol, back in symbols:
        if index.windows is None and symbol in _LETTER_SYMBOLS and symbol not in index.joined_words:
            continue
        for lo, hi in stretches:
            # starts come at most ``back`` before a symbol: symbols that begin up to ``back`` past the stretch
            end = hi + back + len(symbol) - 1
            at = text.find(symbol, lo, end)
            while at >= 0 and len(starts) < MAX_STARTS:
                starts.update(range(max(0, at - back), at + 1))
                at = text.find(symbol, at + 1, end)
    if index.windows is not None:
        bounds = index.windows
        starts = {at for at in starts if bisect_right(bounds, at) % 2}
    last_end = -1
    leads = LEADS.get(rule.name)
    precheck = PRECHECKS.get(rule.name)
    near = NEAR.get(rule.name)
    for start in sorted(starts):
        if start < last_end or (leads is not None and start and text[start] not in leads):
            continue
        if precheck is not None and precheck.match(text, start) is None:
            continue
        if near is not None:
            lead = near.head.match(text, start)
            if lead is None or not _later_within(near, text, start, lead.end() + near.reach):
                continue
        m = rule.pattern.match(text, start)
        if m is not None:
            last_end = m.end()
            yield m


def _rule_hits(
    norm: Normalized, matches: Callable[[Rule, _Index], Iterator[re.Match[str]]] = _matches
) -> list[tuple[Rule, tuple[int, int], str]]:
    """(rule, original span, how it was read) for each match, at most MAX_HITS_PER_RULE per rule.

    ``matches`` finds a rule's matches in one view: the anchored scan, or in the tests a plain
    ``finditer`` over the whole view that the anchored scan must agree with.
    """
    hits: list[tuple[Rule, tuple[int, int], str]] = []
    seen: dict[str, list[tuple[int, int]]] = {}
    base: _Index | None = None
    for view_name, text, to_original in _views(norm):
        if view_name == "leetspeak" and base is not None:
            index = _Index.leet_of(base, text, _leet_windows(base.text, text))
        else:
            index = _Index(text)
        if base is None:
            base = index
        for rule in RULES:
            spans = seen.setdefault(rule.name, [])
            if len(spans) >= MAX_HITS_PER_RULE:
                continue
            for m in matches(rule, index):
                # overlap first: an extra view's matches are mostly the base view's again, and the guards
                # read a sentence each
                span = to_original(*m.span())
                if any(a < span[1] and span[0] < b for a, b in spans):
                    continue
                if rule.guard is not None or rule.flag == "jailbreak":
                    sentence = _sentence_around(text, *m.span())
                    if rule.guard is not None and rule.guard.search(sentence):
                        continue
                    if rule.flag == "jailbreak" and META.search(sentence):
                        continue
                spans.append(span)
                hits.append((rule, span, view_name))
                if len(spans) >= MAX_HITS_PER_RULE:
                    break
    return hits


def rule_findings(text: str, depth: int = 0) -> list[Finding]:
    norm = normalize(text)
    findings: list[Finding] = []
    for rule, span, view_name in _rule_hits(norm):
        severity = rule.severity
        notes = []
        if view_name:
            notes.append(view_name)
        if norm.invisible and INVISIBLE_RE.search(text, span[0], span[1]) is not None:
            notes.append("invisible characters")
        if norm.lookalikes and not text[span[0] : span[1]].isascii():
            notes.append("look-alike or compatibility characters")
        if notes:
            severity = min(10, severity + 1)  # hiding it is evidence of intent
        reason = f"{rule.reason} ({rule.family})" + (f", obfuscated: {', '.join(notes)}" if notes else "")
        findings.append(Finding(rule.flag, severity, severity / 10, reason, f"rules:{rule.name}", span))
    if depth < MAX_DECODE_DEPTH:
        for encoding, span, decoded in _decoded_payloads(text):
            for inner in rule_findings(decoded, depth + 1):
                severity = min(10, inner.severity + 1)
                findings.append(
                    Finding(
                        inner.flag,
                        severity,
                        severity / 10,
                        f"{encoding}-encoded payload: {inner.reason}",
                        f"rules:{encoding}",
                        span,
                    )
                )
        if norm.hidden_tags:
            tag_run = TAG_RE.search(text)
            span = tag_run.span() if tag_run else None
            inner_findings = rule_findings(norm.hidden_tags, depth + 1)
            for inner in inner_findings:
                severity = min(10, inner.severity + 1)
                findings.append(
                    Finding(
                        inner.flag,
                        severity,
                        severity / 10,
                        f"text hidden in Unicode tag characters: {inner.reason}",
                        "rules:unicode-tags",
                        span,
                    )
                )
            if not inner_findings and len(norm.hidden_tags) >= 8:
                findings.append(
                    Finding(
                        "unverified",
                        4,
                        0.4,
                        "text hidden in Unicode tag characters",
                        "rules:unicode-tags",
                        span,
                    )
                )
    if depth == 0:
        # normalize removed every invisible character (none in ASCII text): no search where it found none
        invisible = _INVISIBLE_IN_WORD.search(text) if norm.invisible and not findings else None
        if invisible is not None:
            findings.append(
                Finding(
                    "unverified",
                    4,
                    0.4,
                    "invisible characters inside words",
                    "rules:invisible-characters",
                    invisible.span(),
                )
            )
        if norm.lookalikes >= 2 and not findings:
            findings.append(
                Finding(
                    "unverified",
                    3,
                    0.3,
                    "letters of another script disguised inside Latin words",
                    "rules:look-alikes",
                    None,
                )
            )
    return findings


def _model_finding(
    norm: Normalized, probability: float, window: tuple[int, int], threshold: float, weak: bool = False
) -> Finding | None:
    from apps.governance.detectors.model import severity_for

    severity = severity_for(probability, threshold)
    if severity < 3:
        return None
    flag = "jailbreak" if severity >= 5 else "unverified"
    evidence = ", with the rules' weak evidence" if weak else ""
    reason = f"resembles prompt-injection and jailbreak prompts (classifier p={probability:.2f}{evidence})"
    return Finding(flag, severity, round(probability, 4), reason, MODEL_DETECTOR, norm.span(*window))


def has_weak_evidence(findings: Sequence[Finding]) -> bool:
    """A rule finding below the flagging severity but above noise (3-4): evidence for the model's score."""
    return any(WEAK_SEVERITY <= f.severity < FLAG_SEVERITY for f in findings)


# What the rules found, as inputs to the classifier (model.Classifier.rule_inputs names the ones it takes).
RULE_INPUTS: dict[str, Callable[[Sequence[Finding]], float]] = {
    "weak_evidence": lambda found: float(has_weak_evidence(found)),
    "flagged_by_rules": lambda found: float(any(f.severity >= FLAG_SEVERITY for f in found)),
}


def rule_inputs(findings: Sequence[Finding], names: Sequence[str]) -> list[float]:
    return [RULE_INPUTS[name](findings) for name in names]


def _ordered(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (-f.severity, f.span or (-1, -1), f.detector))


def scan_texts(
    texts: Sequence[str], *, fast: bool = False, embedder: Any = None, classifier: Any = None
) -> list[list[Finding]]:
    """``scan_text`` for many texts, with one batched model call for all of them.

    ``embedder`` and ``classifier`` replace the shipped model (the benchmark's leave-one-source-out runs).
    """
    results = [rule_findings(t) for t in texts]
    if fast or not texts:
        return [_ordered(r) for r in results]
    from apps.governance.detectors.model import get_classifier, score_texts

    norms = [normalize(t) for t in texts]
    classifier = classifier or get_classifier()
    extra = [rule_inputs(found, classifier.rule_inputs) for found in results]
    scored = score_texts([n.text for n in norms], embedder, classifier, extra)
    for norm, found, (probability, window) in zip(norms, results, scored, strict=True):
        # weak rule evidence lowers the bar the model must clear (the thresholds were chosen together)
        weak = has_weak_evidence(found)
        threshold = classifier.threshold_for(weak)
        finding = _model_finding(
            norm, probability, window, threshold, weak and threshold < classifier.threshold
        )
        if finding is not None:
            found.append(finding)
    return [_ordered(r) for r in results]


def scan_text(text: str, *, fast: bool = False) -> list[Finding]:
    """Findings for ``text``, most severe first. ``fast=True``: rules only (no model, a few ms)."""
    if not isinstance(text, str):
        raise TypeError("scan_text takes a str")
    return scan_texts([text], fast=fast)[0]
