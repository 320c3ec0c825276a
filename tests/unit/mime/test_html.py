"""sanitize_html (nh3) and html_to_text (stdlib) on their own."""

from __future__ import annotations

import pytest

from adapters.html import html_to_text, sanitize_html


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>a<script>alert(1)</script>b</p>", "<p>ab</p>"),
        ("<style>body{background:url(http://x/)}</style><p>a</p>", "<p>a</p>"),
        ('<iframe src="http://x/"></iframe><object data="x"></object><embed src="x"><p>a</p>', "<p>a</p>"),
        ('<form action="http://x/"><input name="q"><button>go</button></form>', "go"),
        ('<div onclick="x()" onmouseover="y()">a</div>', "<div>a</div>"),
        ('<img src="x" onerror="alert(1)" alt="a">', '<img alt="a">'),
        ('<a href="javascript:alert(1)">a</a>', '<a rel="noopener noreferrer">a</a>'),
        ('<a href=" JaVaScRiPt:alert(1)">a</a>', '<a rel="noopener noreferrer">a</a>'),
        (
            '<a href="https://example.com/" target="_blank">a</a>',
            '<a href="https://example.com/" rel="noopener noreferrer">a</a>',
        ),
        (
            '<a href="mailto:help@example.com">a</a>',
            '<a href="mailto:help@example.com" rel="noopener noreferrer">a</a>',
        ),
        ('<p style="background:url(http://x/)">a</p>', "<p>a</p>"),
        ('<img src="http://x/pixel.gif" alt="pixel" width="1">', '<img width="1" alt="pixel">'),
        ('<img src="https://x/a.png">', "<img>"),
        ('<img src="//x/a.png">', "<img>"),
        ('<img src="data:image/png;base64,AAAA">', "<img>"),
        ('<img src="ftp://x/a.png">', "<img>"),
        ('<img src="relative/a.png">', "<img>"),
        ('<img src="cid:part1@example.com" alt="logo">', '<img src="cid:part1@example.com" alt="logo">'),
        (
            '<table background="http://x/bg.png"><tr><td>a</td></tr></table>',
            "<table><tbody><tr><td>a</td></tr></tbody></table>",
        ),
        ('<font color="red" face="Arial" size="2">a</font>', '<font color="red" face="Arial" size="2">a</font>'),
        ("<svg><image href='http://x/'/></svg>a", "a"),
        ("<!-- secret --><b>a</b>", "<b>a</b>"),
        ('<base href="http://x/"><link rel="stylesheet" href="http://x/s.css"><p>a</p>', "<p>a</p>"),
    ],
)
def test_sanitize_html(html: str, expected: str) -> None:
    assert sanitize_html(html) == expected


def test_ordinary_formatting_survives() -> None:
    html = (
        "<h1>T</h1><p><b>b</b> <i>i</i> <u>u</u> <strong>s</strong> <em>e</em> <span>x</span><br></p>"
        "<ul><li>1</li></ul><ol><li>2</li></ol><blockquote>q</blockquote><pre>p</pre><code>c</code><hr>"
        '<table border="1"><tr><th>h</th><td colspan="2">d</td></tr></table>'
    )
    cleaned = sanitize_html(html)
    for tag in ("h1", "p", "b", "i", "u", "strong", "em", "span", "br", "ul", "ol", "li", "blockquote", "pre", "code"):
        assert f"<{tag}>" in cleaned, tag
    assert "<hr>" in cleaned
    assert '<td colspan="2">' in cleaned


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>a</p><p>b</p>", "a\n\nb"),
        ("a<br>b<br/>c", "a\nb\nc"),
        ("<div>a</div><div>b</div>", "a\n\nb"),
        ("<ul><li>one</li><li>two</li></ul>", "- one\n- two"),
        ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"),
        ("Fish &amp; chips &lt;3 &#233;&eacute;", "Fish & chips <3 éé"),
        ("<head><title>T</title><style>p{}</style></head><script>x()</script>body", "body"),
        ("  lots   of\n\n  space  ", "lots of space"),
        ("<pre>  keep\n  lines</pre>", "keep\nlines"),
        ("<p>unclosed <b>bold", "unclosed bold"),
        ("", ""),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text
