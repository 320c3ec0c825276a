"""HTML from incoming mail: sanitise it for display (nh3) and derive plain text from it (stdlib)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

_HEADINGS = {f"h{n}" for n in range(1, 7)}
_TABLE = {"table", "caption", "colgroup", "col", "thead", "tbody", "tfoot", "tr", "td", "th"}
_TAGS = (
    {"p", "br", "div", "span", "b", "i", "u", "s", "strike", "strong", "em", "small", "big", "sub", "sup"}
    | {"ul", "ol", "li", "dl", "dt", "dd", "blockquote", "pre", "code", "tt", "kbd", "q", "cite"}
    | {"a", "img", "hr", "font", "center", "abbr", "del", "ins", "mark", "address"}
    | _HEADINGS
    | _TABLE
)
# Removed together with their content; every other unknown tag (iframe, object, form...) is
# removed and only its text is kept.
_DROP_WITH_CONTENT = {"script", "style", "title", "head", "template", "textarea", "select", "noscript"}
_CELL = {"align", "valign", "width", "height", "bgcolor", "colspan", "rowspan"}
_ATTRIBUTES = {
    "*": {"title", "lang", "dir", "align"},
    "a": {"href", "name"},
    "img": {"src", "alt", "width", "height", "border"},
    "font": {"color", "face", "size"},
    "table": {"border", "cellpadding", "cellspacing", "width", "bgcolor"},
    "td": _CELL,
    "th": _CELL,
    "tr": _CELL,
    "col": {"span", "width"},
    "colgroup": {"span", "width"},
    "ol": {"start", "type"},
    "ul": {"type"},
    "li": {"value"},
    "blockquote": {"cite"},
}
# No data:, no relative URLs, and for <img> only cid: (see _keep_attribute).
_URL_SCHEMES = {"http", "https", "mailto", "tel", "cid"}


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    """Remote content blocked: an image may only point at an inline part (cid:) of the same mail."""
    if tag == "img" and attribute == "src" and not value.strip().lower().startswith("cid:"):
        return None
    return value


def sanitize_html(html: str) -> str:
    """Safe-to-display HTML: formatting kept; scripts, handlers, styles and remote images removed."""
    return nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags=_DROP_WITH_CONTENT,
        attributes=_ATTRIBUTES,
        attribute_filter=_keep_attribute,
        url_schemes=_URL_SCHEMES,
        url_relative="deny",
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


_BLOCKS = (
    {"p", "div", "br", "hr", "li", "dt", "dd", "tr", "table", "blockquote", "pre", "ul", "ol", "dl", "address"}
    | {"center", "section", "article", "header", "footer", "nav", "aside", "main", "form", "fieldset", "caption"}
    | {"body", "html", "figure", "figcaption", "details", "summary"}
    | _HEADINGS
)
_LINE_STARTS = {"br", "li", "tr", "dt", "dd"}  # a line break before, none after
_INVISIBLE = {"script", "style", "head", "title", "template", "noscript"}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._hidden = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _INVISIBLE:
            self._hidden += 1
        elif tag == "pre":
            self._pre += 1
        if tag in _BLOCKS:
            self.chunks.append("\n")
        if tag == "li":
            self.chunks.append("- ")
        elif tag in {"td", "th"}:
            self.chunks.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE:
            self._hidden = max(0, self._hidden - 1)
        elif tag == "pre":
            self._pre = max(0, self._pre - 1)
        if tag in _BLOCKS and tag not in _LINE_STARTS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if not self._pre:
            data = re.sub(r"[ \t\r\n\f]+", " ", data)
        self.chunks.append(data)


def html_to_text(html: str) -> str:
    """Readable plain text from HTML: tags stripped, entities unescaped, block elements on their own lines."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (line.strip(" \t\xa0") for line in "".join(parser.chunks).replace("\r\n", "\n").split("\n"))
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
