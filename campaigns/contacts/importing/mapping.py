"""Mapping a file's columns onto contacts: which column is the phone, which the name, which
become attributes (and under which key), guessed from the header names or the cells, and checked
when a person chooses."""

from __future__ import annotations

import re

from django.utils.translation import gettext as _

from providers.shared.phones import phone_candidates
from providers.shared.text import fold

MAX_KEY = 64

# ---- header names ------------------------------------------------------------------------------

# Compared after slugify(): diacritics folded, lower case, runs of other characters -> "_".
PHONE_HEADERS = {
    "phone",
    "phones",
    "phone_number",
    "phonenumber",
    "mobile",
    "mobile_phone",
    "mobile_number",
    "cell",
    "cellphone",
    "tel",
    "telephone",
    "msisdn",
    "zalo",
    "so_zalo",
    "sdt",
    "so_dt",
    "dt",
    "dtdd",
    "so_dtdd",
    "so_dien_thoai",
    "dien_thoai",
    "dien_thoai_di_dong",
    "di_dong",
    "so_di_dong",
    "so_phone",
    "sdt_khach_hang",
    "sdt_kh",
}
NAME_HEADERS = {
    "name",
    "full_name",
    "fullname",
    "customer",
    "customer_name",
    "contact_name",
    "ho_ten",
    "ho_va_ten",
    "hoten",
    "ten",
    "ten_khach_hang",
    "ten_kh",
    "khach_hang",
    "ho_ten_khach_hang",
}
# Row-number columns Excel users add ("STT" = số thứ tự): not worth keeping as attributes.
IGNORED_HEADERS = {"stt", "tt", "no", "so_thu_tu", "index", "row", "id_row"}

_SLUG = re.compile(r"[^a-z0-9]+")


def slugify_header(text: str) -> str:
    """ "Số điện thoại" -> "so_dien_thoai", "SĐT" -> "sdt" (the form attribute keys take)."""
    return _SLUG.sub("_", fold(text or "").lower()).strip("_")[:MAX_KEY]


def guess_mapping(first: list[str], rows: list[list[str]]) -> dict:
    """Which column is the phone, the name, and which become attributes.

    The first record is a header unless one of its cells is already a valid phone.
    """
    ncols = max([len(first)] + [len(r) for r in rows])
    # A phone of any served country (a Cambodian file's 012 345 678 too) counts as a phone.
    has_header = not any(phone_candidates(c, mobile_only=True) for c in first if c.strip())
    data = rows if has_header else [first, *rows]
    titles = [first[i] if has_header and i < len(first) else "" for i in range(ncols)]
    slugs = [slugify_header(t) for t in titles]

    phone = next((i for i, s in enumerate(slugs) if s in PHONE_HEADERS), None)
    if phone is None and data:
        # No header we know: the column whose sample cells are mostly valid phones.
        scores = []
        for i in range(ncols):
            cells = [r[i] for r in data if i < len(r) and r[i].strip()]
            ok = sum(1 for c in cells if phone_candidates(c, mobile_only=True))
            scores.append((ok, i))
        ok, i = max(scores)
        if ok and ok * 2 >= len(data):
            phone = i
    name = next((i for i, s in enumerate(slugs) if s in NAME_HEADERS and i != phone), None)
    attributes: dict[str, str] = {}
    used = set()
    for i in range(ncols):
        if i in (phone, name) or slugs[i] in IGNORED_HEADERS:
            continue
        if has_header and not titles[i].strip():
            continue  # an unnamed column with a header row: usually Excel's stray empty column
        key = unique_key(slugs[i] or f"column_{i + 1}", used)
        attributes[str(i)] = key
    return {"has_header": has_header, "phone": phone, "name": name, "attributes": attributes}


def unique_key(key: str, used: set[str]) -> str:
    base, n = key, 2
    while key in used or key in ("phone", "name"):
        key = f"{base}_{n}"
        n += 1
    used.add(key)
    return key


def column_titles(first: list[str], rows: list[list[str]], has_header: bool) -> list[str]:
    ncols = max([len(first)] + [len(r) for r in rows])
    return [
        (first[i] if has_header and i < len(first) and first[i].strip() else "")
        or _("Column {n}").format(n=i + 1)
        for i in range(ncols)
    ]


def mapping_errors(mapping: dict, ncols: int) -> list[str]:
    errors = []
    phone = mapping.get("phone")
    if phone is None:
        errors.append(
            _(
                "No phone column: choose which column holds the phone numbers (a header such as "
                "“phone”, “SĐT” or “Số điện thoại” is recognised automatically)."
            )
        )
    elif not (isinstance(phone, int) and 0 <= phone < ncols):
        errors.append(_("The phone column does not exist in the file."))
    name = mapping.get("name")
    if name is not None and not (isinstance(name, int) and 0 <= name < ncols):
        errors.append(_("The name column does not exist in the file."))
    for idx, key in (mapping.get("attributes") or {}).items():
        if not str(idx).isdigit() or int(idx) >= ncols or not key:
            errors.append(_("An attribute column does not exist in the file."))
            break
    return errors
