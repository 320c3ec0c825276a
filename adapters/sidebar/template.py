"""URL templates of HTTP sidebar sources: `{customer_email}`, `{email_domain}`, `{contact_id}` and
`{account_id}`, each URL-encoded when filled in, allowed in the path and the query only (a
placeholder in the host would let a customer's address choose the server we call)."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

PLACEHOLDERS = ("customer_email", "email_domain", "contact_id", "account_id")

_TOKEN = re.compile(r"\{([^{}]*)\}")
# What a placeholder becomes while the template's shape is checked: letters only, so that it
# parses like an ordinary host label, path segment or query value.
_STANDIN = "mailroomplaceholder"


def check_template(template: str) -> list[str]:
    """The template's problems, in words for the admin; empty when it can be used."""
    problems: list[str] = []
    if template != template.strip() or any(c.isspace() or ord(c) < 0x20 or c == "\x7f" for c in template):
        problems.append("the URL must not contain spaces or control characters")
    for name in _TOKEN.findall(template):
        if name not in PLACEHOLDERS:
            problems.append(f"unknown placeholder {{{name}}}; known: " + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS))
    rest = _TOKEN.sub("", template)
    if "{" in rest or "}" in rest:
        problems.append("unbalanced braces: a placeholder is written {name}")
    shape = _TOKEN.sub(_STANDIN, template)
    try:
        parts = urlsplit(shape)
    except ValueError:
        return [*problems, "not a valid URL"]
    if parts.scheme.lower() not in ("http", "https"):
        problems.append("the URL must start with http:// or https://")
    if not parts.hostname:
        problems.append("the URL has no host")
    elif _STANDIN in parts.netloc:
        problems.append("placeholders are allowed in the path and the query only, not in the host")
    if parts.username is not None or parts.password is not None:
        problems.append("credentials in the URL would be shown and logged; use the source's auth header")
    if _STANDIN not in parts.netloc:
        try:
            if parts.port == 0:
                problems.append("port 0 is not a port")
        except ValueError:
            problems.append("the port must be a number from 1 to 65535")
    if _STANDIN in parts.fragment:
        problems.append("a placeholder in the #fragment is never sent; put it in the path or the query")
    return problems


def fill_template(template: str, values: dict[str, str | None]) -> str | None:
    """The template with its placeholders URL-encoded (`a+b@x` becomes `a%2Bb%40x`); None when a
    placeholder it uses has no value (no account known, say): the source then shows no records."""
    missing = False

    def fill(match: re.Match[str]) -> str:
        nonlocal missing
        name = match.group(1)
        if name not in PLACEHOLDERS:
            return match.group(0)  # check_template refuses these; left as written
        value = values.get(name)
        if value is None or value == "":
            missing = True
            return ""
        return quote(value, safe="")

    filled = _TOKEN.sub(fill, template)
    return None if missing else filled
