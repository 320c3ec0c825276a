"""Repairs of a broken header block, on the raw bytes before the email package reads them.

The parser ends the header section at the first line that is neither a field nor indented, and
reads the rest as the body: a junk first line ("no header section") or an unindented folded line
in the middle (`boundary="..."` on a line of its own) then turn the whole mail into body text or
base64 junk. Mail clients read past them; so do we, in the obvious cases only:
* a first line that is not a field, followed by a field: dropped (an mbox `From ` line is kept);
* a line that is not a field, followed by a field, or a `param=value` after a header ending in
  `;`: a continuation of the header before it (indented);
* the obsolete `Name  :` (whitespace before the colon, RFC 5322 4.5.3): `Name:`.
Anything else is left as it is. Pure: the same bytes give the same repair.
"""

from __future__ import annotations

import re

_FIELD = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")  # the email package's test for a header line
_PARAM = re.compile(rb"[ \t]*[\w.-]+\*?\d*\*?[ \t]*=")
_END = re.compile(rb"\r?\n\r?\n")


_OBS_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]+:")  # RFC 5322 4.5.3: `Subject  :` (obsolete)


def _ok(line: bytes) -> bool:
    return line[:1] in (b" ", b"\t") or _FIELD.match(line) is not None


def repair_header_block(raw: bytes) -> bytes:
    end = _END.search(raw)
    cut = end.start() if end else len(raw)
    lines = raw[:cut].split(b"\n")
    first = lines[0].startswith(b"From ")
    if all(_ok(line) for line in lines[1 if first else 0 :]):
        return raw  # the usual case: nothing to repair
    lines = [_OBS_FIELD.sub(rb"\1:", line, count=1) if _OBS_FIELD.match(line) else line for line in lines]
    out: list[bytes] = []
    for i, line in enumerate(lines):
        if _ok(line) or (i == 0 and first):
            out.append(line)
            continue
        following = lines[i + 1] if i + 1 < len(lines) else b""
        next_is_field = _FIELD.match(following) is not None
        if not out:  # junk before the first field
            if next_is_field and line.strip():
                continue
            return raw
        param = out[-1].rstrip().endswith((b";", b",")) and _PARAM.match(line) is not None
        if line.strip() and (next_is_field or param):
            out.append(b" " + line)
            continue
        return raw  # the body starts here without a blank line: read it as the parser does
    return b"\n".join(out) + raw[cut:]
