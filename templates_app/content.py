"""Free content for SMS, Viber and email: SMS length and segments, the "without diacritics" option,
email HTML sanitizing and its plain-text part.

SMS segments (3GPP TS 23.038 / 23.040): a GSM-7 message holds 160 characters in one part, 153 per
part when concatenated (the user data header takes 7); extension characters (^ { } [ ] ~ | € \\)
take two. Anything outside the GSM-7 alphabet makes the whole message UCS-2: 70 characters in one
part, 67 per part, counted in UTF-16 units (an emoji takes two).
"""

from __future__ import annotations

import html as htmllib
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import nh3

from providers.shared.text import fold
from templates_app.rendering import render_placeholders

# ---- SMS -----------------------------------------------------------------------------------------

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = "^{}\\[~]|€\f"
_GSM7 = frozenset(GSM7_BASIC) | frozenset(GSM7_EXTENDED)
_GSM7_EXT = frozenset(GSM7_EXTENDED)
# GSM-7 contains a few accented letters (à è é ì ò ù), but Vietnamese text always has others (ạ ế
# ơ ư đ ...) and Vietnamese SMS gateways send any accented Vietnamese text as Unicode. Counting
# every Vietnamese letter with a diacritic as UCS-2 never underestimates the cost.
_VI_ACCENTED = frozenset("àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ")
_VI_ACCENTED |= frozenset(ch.upper() for ch in _VI_ACCENTED)

GSM7, UCS2 = "GSM-7", "UCS-2"


@dataclass(frozen=True)
class SmsInfo:
    encoding: str  # GSM-7 or UCS-2
    length: int  # characters as the recipient sees them
    units: int  # septets (GSM-7) or UTF-16 units (UCS-2) the message takes
    segments: int
    per_segment: int  # capacity of one part at this length (160/153 or 70/67)
    remaining: int  # units left in the last part

    def as_dict(self) -> dict:
        return {
            "encoding": self.encoding,
            "length": self.length,
            "units": self.units,
            "segments": self.segments,
            "per_segment": self.per_segment,
            "remaining": self.remaining,
        }


def sms_encoding(text: str) -> str:
    for ch in text:
        if ch not in _GSM7 or ch in _VI_ACCENTED:
            return UCS2
    return GSM7


def _pack(units: list[int], single: int, multi: int) -> tuple[int, int, int]:
    """(segments, per_segment, remaining) without splitting a 2-unit character across parts."""
    total = sum(units)
    if total == 0:
        return 0, single, single
    if total <= single:
        return 1, single, single - total
    segments, used = 1, 0
    for u in units:
        if used + u > multi:
            segments += 1
            used = 0
        used += u
    return segments, multi, multi - used


def sms_info(text: str) -> SmsInfo:
    text = text or ""
    encoding = sms_encoding(text)
    if encoding == GSM7:
        units = [2 if ch in _GSM7_EXT else 1 for ch in text]
        segments, per, remaining = _pack(units, 160, 153)
    else:
        units = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
        segments, per, remaining = _pack(units, 70, 67)
    return SmsInfo(encoding, len(text), sum(units), segments, per, remaining)


# Typography that Word and phones insert and GSM-7 lacks: replaced when sending without diacritics.
_ASCII_PUNCT = str.maketrans(
    {
        "‘": "'",
        "’": "'",
        "“": '"',
        "”": '"',
        "–": "-",
        "—": "-",
        "…": "...",
        "\u00a0": " ",
        "•": "-",
    }
)


def sms_prepare(text: str, *, strip_diacritics: bool = False) -> str:
    """The SMS text as it will be sent: without diacritics (and typographic punctuation) when
    asked, so it fits GSM-7."""
    text = text or ""
    if strip_diacritics:
        text = fold(text).translate(_ASCII_PUNCT)
    return text


# ---- email ---------------------------------------------------------------------------------------

EMAIL_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "code", "col", "colgroup", "dd",
    "del", "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "li", "ol", "p", "pre", "s", "small", "span", "strike", "strong", "sub", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
_COMMON_ATTRS = {"style", "align", "class", "dir", "title", "width", "height"}
EMAIL_ATTRIBUTES = {
    "*": _COMMON_ATTRS,
    "a": {"href", "name", "target"},
    "img": {"src", "alt", "border"},
    "table": {"border", "cellpadding", "cellspacing", "bgcolor", "role"},
    "td": {"colspan", "rowspan", "valign", "bgcolor"},
    "th": {"colspan", "rowspan", "valign", "bgcolor", "scope"},
    "tr": {"valign", "bgcolor"},
    "col": {"span"},
    "font": {"color", "face", "size"},
    "ol": {"start", "type"},
}
# Inline CSS is how email is styled; only presentational properties pass (no url(), no position).
EMAIL_STYLE_PROPERTIES = {
    "background-color", "border", "border-bottom", "border-collapse", "border-color",
    "border-left", "border-radius", "border-right", "border-style", "border-top", "border-width",
    "color", "display", "font", "font-family", "font-size", "font-style", "font-weight", "height",
    "letter-spacing", "line-height", "margin", "margin-bottom", "margin-left", "margin-right",
    "margin-top", "max-width", "min-width", "padding", "padding-bottom", "padding-left",
    "padding-right", "padding-top", "text-align", "text-decoration", "text-transform",
    "vertical-align", "white-space", "width",
}  # fmt: skip
EMAIL_URL_SCHEMES = {"http", "https", "mailto", "tel"}


def sanitize_email_html(html: str) -> str:
    """Allow-list sanitizing (nh3, the Ammonia crate): scripts, event handlers, forms, iframes,
    javascript: links and unknown CSS are removed; links get rel="noopener noreferrer"."""
    return nh3.clean(
        html or "",
        tags=EMAIL_TAGS,
        attributes=EMAIL_ATTRIBUTES,
        url_schemes=EMAIL_URL_SCHEMES,
        filter_style_properties=EMAIL_STYLE_PROPERTIES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


_BLOCK = {
    "address", "article", "blockquote", "center", "dd", "div", "dl", "dt", "footer", "form", "h1",
    "h2", "h3", "h4", "h5", "h6", "header", "hr", "ol", "p", "pre", "section", "table", "tr", "ul",
}  # fmt: skip
_SKIP = {"script", "style", "head", "title"}


class _TextExtractor(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.links: list[str | None] = []
        self.link_text: list[list[str]] = []
        self.list_stack: list[list] = []  # [kind, counter]

    def _emit(self, text: str) -> None:
        (self.link_text[-1] if self.link_text else self.out).append(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in _SKIP:
            self.skip += 1
        elif tag == "br":
            self._emit("\n")
        elif tag in ("ul", "ol"):
            self.list_stack.append([tag, 0])
            self._emit("\n")
        elif tag == "li":
            prefix = "- "
            if self.list_stack and self.list_stack[-1][0] == "ol":
                self.list_stack[-1][1] += 1
                prefix = f"{self.list_stack[-1][1]}. "
            self._emit("\n" + prefix)
        elif tag == "a":
            self.links.append(a.get("href"))
            self.link_text.append([])
        elif tag == "img" and a.get("alt"):
            self._emit(a["alt"])
        elif tag in ("td", "th"):
            self._emit("\t")
        elif tag in _BLOCK:
            self._emit("\n\n" if tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6") else "\n")
        if tag == "hr":
            self._emit("-" * 20 + "\n")

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag == "a" and self.link_text:
            text = "".join(self.link_text.pop())
            href = self.links.pop() if self.links else None
            shown = re.sub(r"\s+", " ", text).strip()
            if href and href.startswith(("http://", "https://")) and href != shown:
                self._emit(f"{shown} ({href})" if shown else href)
            elif href and href.startswith("mailto:") and href[7:] != shown:
                self._emit(f"{shown} ({href[7:]})" if shown else href[7:])
            else:
                self._emit(text)
        elif tag in ("ul", "ol"):
            if self.list_stack:
                self.list_stack.pop()
            self._emit("\n")
        elif tag in _BLOCK:
            self._emit("\n\n" if tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6") else "\n")

    def handle_data(self, data):
        if not self.skip:
            self._emit(data)


def html_to_text(html: str) -> str:
    """The plain-text alternative of an HTML email: paragraphs and line breaks kept, lists as
    "- " or "1. ", links as "text (url)", images by their alt text, no markup or entities."""
    parser = _TextExtractor()
    parser.feed(html or "")
    parser.close()
    while parser.link_text:  # unclosed <a>
        parser.out.extend(parser.link_text.pop(0))
    text = "".join(parser.out)
    lines = []
    for line in text.split("\n"):
        line = re.sub(r"[ \t\u00a0]+", " ", line).strip()
        lines.append(line)
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


# ---- rendering a content template ----------------------------------------------------------------


@dataclass
class RenderedContent:
    text: str  # SMS/Viber text, or the email's plain-text part
    subject: str = ""
    html: str = ""  # email only: sanitized
    sms: SmsInfo | None = None
    extra: dict = field(default_factory=dict)

    @property
    def outbound(self) -> str:
        """What goes to the provider: an email's sanitized HTML (OutboundMessage has no separate
        text part yet), else the text."""
        return self.html or self.text


def render_content(
    *,
    channel_kind: str,
    body: str,
    data: dict[str, str],
    subject: str = "",
    strip_diacritics: bool = False,
) -> RenderedContent:
    """One recipient's free content: placeholders filled; SMS prepared and measured; email HTML
    escaped per value, sanitized, with its plain-text part."""
    if channel_kind == "email":
        html = sanitize_email_html(render_placeholders(body, data, escape=htmllib.escape))
        return RenderedContent(
            text=html_to_text(html),
            subject=re.sub(r"\s+", " ", render_placeholders(subject, data)).strip(),
            html=html,
        )
    text = render_placeholders(body, data)
    if channel_kind == "sms":
        text = sms_prepare(text, strip_diacritics=strip_diacritics)
        return RenderedContent(text=text, sms=sms_info(text))
    return RenderedContent(text=text)
