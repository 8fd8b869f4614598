"""SMS segment counting and email sanitizing."""

import pytest

from templates_app.content import (
    GSM7,
    UCS2,
    html_to_text,
    render_content,
    sanitize_email_html,
    sms_info,
    sms_prepare,
)


@pytest.mark.parametrize(
    ("text", "encoding", "segments", "per_segment"),
    [
        ("", GSM7, 0, 160),
        ("a" * 160, GSM7, 1, 160),
        ("a" * 161, GSM7, 2, 153),
        ("a" * 306, GSM7, 2, 153),
        ("a" * 307, GSM7, 3, 153),
        ("ạ" * 70, UCS2, 1, 70),
        ("ạ" * 71, UCS2, 2, 67),
        ("ạ" * 134, UCS2, 2, 67),
        ("ạ" * 135, UCS2, 3, 67),
        ("{" * 80, GSM7, 1, 160),  # extension characters take two septets
        ("{" * 81, GSM7, 2, 153),
        ("€" + "a" * 159, GSM7, 2, 153),
    ],
)
def test_sms_segments(text, encoding, segments, per_segment):
    info = sms_info(text)
    assert (info.encoding, info.segments, info.per_segment) == (encoding, segments, per_segment)


def test_vietnamese_diacritics_force_ucs2_even_for_gsm_letters():
    assert sms_info("Xin chao ban").encoding == GSM7
    # à and é exist in GSM-7, but Vietnamese text goes out as Unicode
    assert sms_info("Xin chào").encoding == UCS2
    assert sms_info("Đơn hàng").encoding == UCS2
    assert sms_info("Cafe café").encoding == UCS2


def test_escape_pair_is_not_split_across_parts():
    text = "a" * 152 + "€" + "b" * 10  # 152 + 2 + 10 = 164 septets
    info = sms_info(text)
    # part 1 takes 152 septets (the escape pair does not fit in the one left), part 2 the rest
    assert info.units == 164 and info.segments == 2 and info.remaining == 153 - 12


def test_emoji_counts_two_utf16_units():
    info = sms_info("😀" * 35)
    assert info.encoding == UCS2 and info.units == 70 and info.segments == 1
    assert sms_info("😀" * 36).segments == 2


def test_send_without_diacritics():
    text = "Chào Nguyễn Đức, đơn “DH01” đã giao – cảm ơn…"
    folded = sms_prepare(text, strip_diacritics=True)
    assert folded == 'Chao Nguyen Duc, don "DH01" da giao - cam on...'
    assert sms_info(folded).encoding == GSM7
    assert sms_prepare(text) == text
    long_vi = "Quý khách " * 10  # 100 characters: 2 Unicode parts, 1 GSM-7 part
    assert sms_info(long_vi).segments == 2
    assert sms_info(sms_prepare(long_vi, strip_diacritics=True)).segments == 1


def test_render_sms_content():
    r = render_content(
        channel_kind="sms",
        body="Chào {{name}}, mã {{code}}",
        data={"name": "Ánh", "code": "X1"},
        strip_diacritics=True,
    )
    assert r.text == "Chao Anh, ma X1"
    assert r.sms.encoding == GSM7 and r.sms.segments == 1 and r.sms.length == 15


def test_sanitize_removes_dangerous_markup():
    dirty = (
        '<p onclick="steal()" style="color:red; position:fixed; background:url(http://x/t.gif)">Hi</p>'
        "<script>alert(1)</script><style>p{}</style>"
        '<a href="javascript:alert(1)">x</a><a href="https://loa.vn" target="_blank">ok</a>'
        '<img src="https://loa.vn/logo.png" alt="Loa" onerror="x()">'
        '<iframe src="https://evil"></iframe><form action="https://evil"><input name="p"></form>'
        "<!-- secret comment -->"
        '<table border="0"><tr><td colspan="2">cell</td></tr></table>'
    )
    clean = sanitize_email_html(dirty)
    for bad in (
        "onclick",
        "script",
        "alert",
        "position",
        "url(",
        "iframe",
        "<form",
        "<input",
        "onerror",
        "secret comment",
        "<style",
    ):
        assert bad not in clean, bad
    assert 'style="color:red"' in clean
    assert '<a href="https://loa.vn" target="_blank" rel="noopener noreferrer">ok</a>' in clean
    assert '<img src="https://loa.vn/logo.png" alt="Loa">' in clean
    assert 'colspan="2"' in clean


def test_html_to_text():
    html = (
        "<h1>Đơn hàng</h1><p>Chào <b>An</b>,<br>cảm ơn bạn.</p>"
        "<ul><li>Áo</li><li>Quần</li></ul><ol><li>một</li><li>hai</li></ol>"
        '<p>Xem <a href="https://loa.vn/d/1">chi tiết</a> &amp; <a href="mailto:hi@loa.vn">hi@loa.vn</a></p>'
        '<img src="x.png" alt="Logo Loa"><script>var x=1;</script>'
    )
    assert html_to_text(html) == (
        "Đơn hàng\n\nChào An,\ncảm ơn bạn.\n\n- Áo\n- Quần\n\n1. một\n2. hai\n\n"
        "Xem chi tiết (https://loa.vn/d/1) & hi@loa.vn\n\nLogo Loa"
    )


def test_render_email_escapes_values_and_builds_text_part():
    r = render_content(
        channel_kind="email",
        body='<p>Chào {{name}}</p><p><a href="https://loa.vn">Xem</a></p>',
        subject="Đơn  {{code}}\n",
        data={"name": '<script>alert("x")</script>Ánh', "code": "D1"},
    )
    assert "<script" not in r.html
    assert "&lt;script&gt;" in r.html  # the value is text, not markup
    assert r.subject == "Đơn D1"
    assert r.text == 'Chào <script>alert("x")</script>Ánh\n\nXem (https://loa.vn)'
