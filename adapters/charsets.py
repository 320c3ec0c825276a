"""Text from bytes whose charset label may lie or be missing. Never raises; deterministic (the same bytes
and labels give the same text: charset-normalizer is pinned in pyproject.toml).

Order: ISO-2022 escapes (a 7-bit encoding UTF-8 would "read" with the ESC bytes left in); a 7-bit
ISO-2022-JP label on 8-bit bytes (Shift_JIS); the declared charset strictly, widened to its superset
(GB2312/GBK -> GB18030, ks_c_5601 -> cp949, Shift_JIS -> cp932, iso-8859-1 -> cp1252, UTF-7 labels);
UTF-8; a declared multi-byte charset with a few bad sequences; for undeclared (or us-ascii) 8-bit
text: CJK by shape, then charset-normalizer on longer text; last UTF-8 with each bad byte as cp1252.
"""

from __future__ import annotations

import codecs
import re
from typing import Any

ALIASES = {
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "gb2312": "gb18030",
    "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030", "windows-936": "gb18030", "euc-cn": "gb18030",
    "gb_2312-80": "gb18030", "ks_c_5601-1987": "cp949", "ks_c_5601": "cp949", "ks_c_5601-1989": "cp949",
    "euc-kr": "cp949", "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932",
    "windows-31j": "cp932", "ms_kanji": "cp932", "big5": "big5hkscs", "tis-620": "cp874", "windows-874": "cp874",
    "unicode-1-1-utf-7": "utf-7", "x-unicode-2-0-utf-7": "utf-7", "utf7": "utf-7",
}  # fmt: skip
# Text labelled with these but valid UTF-8 is UTF-8 (a common mislabelling; the reverse is near impossible).
UTF8_SUSPECTS = {"us-ascii", "ascii", "iso-8859-1", "iso8859-1", "latin1", "latin-1", "cp1252", "windows-1252"}
_ASCII_LABELS = {"us-ascii", "ascii", "ansi_x3.4-1968", "us"}
_ISO2022JP_LABELS = {"iso-2022-jp", "iso2022-jp", "csiso2022jp", "iso-2022-jp-1", "iso-2022-jp-2", "iso-2022-jp-3",
                     "iso-2022-jp-ext", "iso-2022-jp-2004", "x-iso-2022-jp"}  # fmt: skip
# Strict ISO-2022-JP first, then its extensions (JIS X 0212, X 0213: the NEC row 13 circled digits).
_JIS_CODECS = ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2", "iso2022_jp_3", "iso2022_jp_2004")
_ESCAPE = re.compile(rb"\x1b(?:\$[@AB]|\$\([A-Z@]|\$\)[A-Z]|\([BJI])")
_HIGH_RUN = re.compile(rb"[\x80-\xff]+")
_SURROGATES = re.compile("[\ud800-\udfff]")
_DETECT_MIN_HIGH = 16  # charset-normalizer guesses short text badly (GBK as Big5, GB2312 as cp949)


def _as_cp1252(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: bytes that are not UTF-8 are read as cp1252 (mixed or mislabelled text)."""
    assert isinstance(error, UnicodeDecodeError)
    return error.object[error.start : error.end].decode("cp1252", "replace"), error.end


codecs.register_error("mailroom.cp1252", _as_cp1252)


def clean(text: str) -> str:
    """No NUL characters and no lone surrogates (neither can be stored in PostgreSQL text)."""
    return _SURROGATES.sub("\ufffd", text.replace("\x00", ""))


def codec(label: str) -> str:
    return ALIASES.get(label, label)


def _strict(data: bytes, label: str) -> str | None:
    try:
        return data.decode(codec(label))
    except (LookupError, UnicodeError, ValueError, TypeError):
        return None


def decode_bytes(data: bytes, *charsets: str | None) -> str:
    """Text from bytes, never raising (see the module's docstring for the order)."""
    labels = [name for name in ((c or "").strip().strip("\"'").lower() for c in charsets) if name]
    undeclared = all(label in _ASCII_LABELS for label in labels)
    if b"\x1b" in data and data.isascii() and _ESCAPE.search(data):
        text = _iso2022(data, labels)
        if text is not None:
            return clean(text)
    if labels and labels[0] in _ISO2022JP_LABELS and not data.isascii():  # 8-bit labelled 7-bit ISO-2022-JP
        for name in ("utf-8", "cp932", "euc_jp"):
            text = _strict(data, name)
            if text is not None:
                return clean(text)
    if labels and labels[0] in UTF8_SUSPECTS:
        labels.insert(0, "utf-8")
    for label in (*labels, "utf-8"):
        text = _strict(data, label)
        if text is not None:
            return clean(text)
    if labels and labels[0] not in UTF8_SUSPECTS and labels[0] not in ("utf-8", "utf8"):
        try:
            text = data.decode(codec(labels[0]), errors="replace")
            cjk = codec(labels[0]) in _CJK_CODECS  # a CJK reading with a few holes beats cp1252 mojibake
            if text.count("\ufffd") <= (2 + len(text) // 10 if cjk else 1 + len(data) // 200):
                strict = guess_cjk(data) if cjk else None
                return clean(strict if strict is not None else text)  # a whole reading beats a patched one
        except (LookupError, UnicodeError, ValueError, TypeError):
            pass
    if undeclared:  # nothing (true) declared: guess
        guessed = guess(data)
        if guessed is not None:
            return clean(guessed)
    return clean(data.decode("utf-8", errors="mailroom.cp1252"))


def _iso2022(data: bytes, labels: list[str]) -> str | None:
    """ISO-2022 text: the declared variant, the JIS codecs from strict to extended, ISO-2022-KR, then the
    JIS bytes read through cp932 (CP50220-like: NEC row 13 and the NEC-selected IBM extensions)."""
    declared = [codec(label) for label in labels if label.startswith("iso-2022") or label.startswith("iso2022")]
    for name in (*declared, *_JIS_CODECS, "iso2022_kr"):
        text = _strict(data, name)
        if text is not None and "\x1b" not in text:
            return text
    return _jis_via_cp932(data)


def _jis_via_cp932(data: bytes) -> str | None:
    """ISO-2022-JP bytes turned into Shift_JIS and read as cp932 (Microsoft's CP50220/50221 superset)."""
    out = bytearray()
    mode = b"B"  # ASCII
    i = 0
    while i < len(data):
        found = _ESCAPE.match(data, i)
        if found:
            sequence = found[0]
            mode = b"K" if sequence.startswith(b"\x1b$") else sequence[-1:]
            i = found.end()
            continue
        byte = data[i]
        if mode == b"K" and byte not in (0x0A, 0x0D) and i + 1 < len(data):
            j1, j2 = byte, data[i + 1]
            if not (0x21 <= j1 <= 0x7E and 0x21 <= j2 <= 0x7E):
                return None
            s1 = (j1 + 1) // 2 + 0x70
            s1 += 0x40 if s1 >= 0xA0 else 0
            s2 = (j2 + 0x1F + (1 if j2 >= 0x60 else 0)) if j1 % 2 else j2 + 0x7E
            out += bytes((s1, s2))
            i += 2
            continue
        if mode == b"K":
            mode = b"B"  # a line end inside a double-byte run: back to ASCII, as clients do
        out.append(byte + 0x80 if mode == b"I" and 0x21 <= byte <= 0x5F else byte)
        i += 1
    try:
        return out.decode("cp932")
    except UnicodeDecodeError:
        return None


def _fraction(text: str, low: int, high: int, *more: tuple[int, int]) -> float:
    wide = [ch for ch in text if ord(ch) >= 0x80]
    if not wide:
        return 0.0
    ranges = ((low, high), *more)
    return sum(1 for ch in wide if any(a <= ord(ch) <= b for a, b in ranges)) / len(wide)


def guess_cjk(data: bytes) -> str | None:
    """Undeclared (or wrongly declared single-byte) 8-bit text that has the shape of CJK text: a run of at
    least 4 high bytes (Western text almost never has 4 accented letters in a row). Korean if it reads as
    Hangul, Japanese if it reads with kana, Chinese (GB18030, then Big5) if it decodes strictly."""
    runs = _HIGH_RUN.findall(data)
    if not runs or max(map(len, runs)) < 4:
        return None
    korean = _strict(data, "euc_kr")  # EUC-KR shaped: cp949's extra Hangul would read Shift_JIS as Korean
    if korean is not None and _fraction(korean, 0xAC00, 0xD7A3) >= 0.8:
        return korean
    gb_shaped = all(len(run) % 2 == 0 and min(run) >= 0xA1 for run in runs)
    chinese = _strict(data, "gb18030")
    if chinese is not None and gb_shaped:
        return chinese
    japanese = _strict(data, "cp932")
    if japanese is not None and _fraction(japanese, 0x3040, 0x30FF) >= 0.2:  # full-width kana, not half-width
        return japanese
    return _strict(data, "big5hkscs") or chinese


def guess(data: bytes) -> str | None:
    """Undeclared 8-bit text that is not UTF-8: CJK by shape, else charset-normalizer on long enough text."""
    if data.isascii() or _strict(data, "utf-8") is not None:
        return None
    found = guess_cjk(data)
    if found is not None:
        return found
    if sum(len(run) for run in _HIGH_RUN.findall(data)) < _DETECT_MIN_HIGH:
        return None
    from charset_normalizer import from_bytes  # imported on first use: most mail never needs it

    best = from_bytes(data).best()
    if best is None or best.chaos > 0.2:
        return None
    text = str(best)
    # Among the Latin code pages detection is a coin toss (cp1250 for Spanish): cp1252, the fallback, is what
    # such mail means far more often. Detection decides only for other scripts (Cyrillic, Greek, Hebrew...).
    return text if _fraction(text, 0x370, 0x10FFFF) >= 0.5 else None


_CJK_CODECS = {"gb18030", "big5hkscs", "cp932", "cp949", "euc_jp", "euc-jp", "iso2022_jp", "iso-2022-jp", "hz"}


def decode_header_bytes(data: bytes, hint: str | None) -> str:
    """Raw 8-bit header bytes: UTF-8 (RFC 6532), else CJK by shape unless the hint (another part's label,
    which says little about the headers) is CJK itself, else as decode_bytes with the hint."""
    text = _strict(data, "utf-8")
    if text is not None:
        return clean(text)
    if codec((hint or "").strip().strip("\"'").lower()) not in _CJK_CODECS:
        found = guess_cjk(data)
        if found is not None:
            return clean(found)
    return decode_bytes(data, "utf-8", hint)


def _decode_jis(data: Any, errors: str = "strict", /) -> tuple[str, int]:
    raw = bytes(data)
    text = _iso2022(raw, []) if raw.isascii() else _strict(raw, "cp932")
    return (text if text is not None else raw.decode("iso2022_jp", errors)), len(raw)


_JIS_CODEC = "x_mailroom_iso2022_jp"


def _search(name: str) -> codecs.CodecInfo | None:
    if name.replace("-", "_") != _JIS_CODEC:
        return None
    return codecs.CodecInfo(codecs.lookup("iso2022_jp").encode, _decode_jis, name=_JIS_CODEC)


codecs.register(_search)
# Encoded-word charsets, widened like body labels; ISO-2022-JP words read with the extensions and the
# Shift_JIS fallback of decode_bytes (the email package decodes encoded-words with codecs by name).
ENCODED_WORD_ALIASES = {**ALIASES, **{label: _JIS_CODEC for label in _ISO2022JP_LABELS}}
