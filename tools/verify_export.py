#!/usr/bin/env python3
"""Checks an export of mailroom's event log (`mailroom audit export`) on its own: Python 3 and
this file, nothing of mailroom.

    python3 verify_export.py EXPORT.jsonl [--digest POSITION:HEX ...]

Each line of the export is one stored event. The hash chain (as mailroom/domain/audit.py
defines it) links every event to all the events before it:

    digest_0 = 32 zero bytes
    digest_n = SHA-256(digest_{n-1} || field(originator id, 16 bytes)
                                    || field(originator version, 8 bytes big-endian)
                                    || field(topic, UTF-8)
                                    || field(SHA-256(state)))
    field(b) = len(b) as 4 bytes big-endian || b

For each line this script recomputes its digest from the line's own fields ("aggregate",
"version", "topic", and "state": the stored bytes in base64, or "state_sha256" where the
export withheld a state) and the digest of the line before ("previous" on the first line,
so that an export made with --after can be checked too), and compares it with the line's
"chain"; the readable "type", "time" and "data" must say what the hashed topic and state hold.
A customer's personal data is sealed in the state (encrypted under that customer's key, kept
outside the log; {"_type_": "sealed", ...}): "data" shows it opened, or as erased, and this
script cannot compare it; the chain covers it as stored, sealed.
Positions must increase. Each --digest POSITION:HEX (a digest you kept, or one printed by
`mailroom audit seal`) must equal the chain at that position. The export is then exactly the
log that was sealed: any event changed, dropped, added or moved changes every digest after it.

Exit 0 when everything matches; 1 naming the first line that does not.
"""

import argparse
import base64
import hashlib
import json
import sys
import uuid


def field(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def link(previous: bytes, line: dict) -> bytes:
    if line.get("state") is not None:
        state_digest = hashlib.sha256(base64.b64decode(line["state"], validate=True)).digest()
    else:
        state_digest = bytes.fromhex(line["state_sha256"])
    return hashlib.sha256(
        previous
        + field(uuid.UUID(line["aggregate"]).bytes)
        + field(int(line["version"]).to_bytes(8, "big"))
        + field(line["topic"].encode("utf-8"))
        + field(state_digest)
    ).digest()


SEALED = object()  # a sealed value: agrees with whatever "data" shows


def unwrapped(value):
    """A stored state as plain JSON: {"_type_": T, "_data_": D} wrappers replaced by D (a UUID
    stored as hex written as mailroom shows it), a record's version marker "_v" dropped."""
    if isinstance(value, dict):
        if set(value) == {"_type_", "_data_"}:
            if value["_type_"] == "sealed":
                return SEALED
            inner = unwrapped(value["_data_"])
            return str(uuid.UUID(inner)) if value["_type_"] == "uuid_hex" else inner
        return {k: unwrapped(v) for k, v in value.items() if k != "_v"}
    if isinstance(value, list):
        return [unwrapped(v) for v in value]
    return value


def shown_differs(line: dict):
    """The first readable field ("type", "aggregate_type", "time", a key of "data") that says
    otherwise than the hashed topic and state, if any (keys the state does not hold, filled in
    when mailroom reads an old event, are not compared)."""
    if line["topic"].split(":", 1)[-1] != f"{line['aggregate_type']}.{line['type']}":
        return "type"
    if line.get("state") is None:
        return None
    state = unwrapped(json.loads(base64.b64decode(line["state"])))
    if "timestamp" in state and state["timestamp"] != line["time"]:
        return "time"
    for key, value in line["data"].items():
        if key in state and not agrees(state[key], value):
            return f"data[{key!r}]"
    return None


def agrees(stored, shown) -> bool:
    """Equal, where records are compared on the fields both have (a field an old event lacks is
    filled in, one it had may be gone, when mailroom reads it)."""
    if stored is SEALED:
        return True
    if isinstance(stored, dict) and isinstance(shown, dict):
        return all(agrees(stored[k], shown[k]) for k in stored.keys() & shown.keys())
    if isinstance(stored, list) and isinstance(shown, list):
        return len(stored) == len(shown) and all(agrees(a, b) for a, b in zip(stored, shown, strict=True))
    return stored == shown


def parse_anchor(text: str) -> tuple:
    position, _, digest = text.partition(":")
    return int(position), digest.strip().lower()


def main() -> int:
    parser = argparse.ArgumentParser(description="Check a `mailroom audit export` file on its own.")
    parser.add_argument("export", help="the JSON lines file (- for stdin)")
    parser.add_argument("--digest", action="append", default=[], metavar="POSITION:HEX",
                        help="a digest kept outside mailroom; may be given several times")
    args = parser.parse_args()
    anchors = dict(parse_anchor(a) for a in args.digest)
    if args.export == "-":
        return check(sys.stdin, anchors)
    with open(args.export, encoding="utf-8") as source:
        return check(source, anchors)


def check(source, anchors: dict) -> int:
    previous = start = None  # the chain of the line before; the digest before the first line
    last_position = None
    seen = set()  # anchor positions found
    count = 0
    for number, text in enumerate(source, start=1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
            if previous is None:
                previous = start = bytes.fromhex(line["previous"])
            elif line["previous"] != previous.hex():
                return fail(number, line, "its 'previous' is not the chain of the line before")
            if last_position is not None and line["position"] <= last_position:
                return fail(number, line, "positions do not increase")
            digest = link(previous, line)
            differing = shown_differs(line)
        except (KeyError, ValueError, TypeError) as exc:
            print(f"line {number}: unreadable: {exc!r}")
            return 1
        if digest.hex() != line["chain"]:
            return fail(number, line, f"the chain recomputes to {digest.hex()}, the line says {line['chain']}")
        if differing is not None:
            return fail(number, line, f"its {differing} is not what its (hashed) topic and state hold")
        if line["position"] in anchors:
            seen.add(line["position"])
            if anchors[line["position"]] != digest.hex():
                return fail(number, line, f"the chain is {digest.hex()}, the digest given is "
                                          f"{anchors[line['position']]}")
        previous, last_position = digest, line["position"]
        count += 1
    for position, digest in sorted(anchors.items()):
        if position not in seen and not (position == 0 and digest == bytes(32).hex()):
            print(f"--digest {position}: no line of the export has position {position}")
            return 1
    if start is not None and start != bytes(32):
        print(f"note: a partial export: it starts from the chain {start.hex()}, which only a --digest "
              "at or after its first position vouches for")
    final = previous.hex() if previous is not None else bytes(32).hex()
    print(f"OK: {count} events, chain {final} at position {last_position or 0}; "
          f"{len(anchors)} digest(s) given, all matching")
    return 0


def fail(number: int, line: dict, why: str) -> int:
    print(f"line {number} (position {line.get('position')}): {why}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
