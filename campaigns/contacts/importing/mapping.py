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
    "phone_1_value",  # Google Contacts' export ("Phone 1 - Value")
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
# A name split in columns (Google Contacts: "First Name"/"Middle Name"/"Last Name", older exports
# "Given Name"/"Additional Name"/"Family Name"; Vietnamese "Họ"/"Tên đệm"/"Tên"). "ho" and "ten"
# are a split name only together: "Tên" alone is a whole name (it is in NAME_HEADERS).
LAST_NAME_HEADERS = {"last_name", "lastname", "family_name", "surname", "ho"}
MIDDLE_NAME_HEADERS = {"middle_name", "middlename", "additional_name", "ten_dem", "ten_lot"}
FIRST_NAME_HEADERS = {"first_name", "firstname", "given_name", "ten"}
_AMBIGUOUS_PARTS = {"ho", "ten"}
# Google Contacts joins several numbers of one contact in one cell with " ::: ".
SEVERAL_SEPARATOR = ":::"
EXTRA_PHONES = 3  # the other numbers of such a cell are kept as phone_2 ... phone_4

# An attribute column under one of these keys holds tags ("VIP|Online", also "," or ";"):
# KiotViet's "Nhóm khách hàng", "Groups", "Tags". Its cells become the contact's tags, not an
# attribute (tag_attribute_index); naming any column "tags" on the mapping page does the same.
TAG_HEADERS = {"tags", "tag", "groups", "group", "nhom", "nhom_khach_hang", "nhom_kh", "nhan"}

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
    parts = name_parts(slugs)
    name = next(
        (i for i, s in enumerate(slugs) if s in NAME_HEADERS and i != phone and i not in parts),
        None,
    )
    attributes: dict[str, str] = {}
    used = set()
    for i in range(ncols):
        if i in (phone, name) or slugs[i] in IGNORED_HEADERS:
            continue
        if has_header and not titles[i].strip():
            continue  # an unnamed column with a header row: usually Excel's stray empty column
        key = unique_key(slugs[i] or f"column_{i + 1}", used)
        attributes[str(i)] = key
    mapping = {"has_header": has_header, "phone": phone, "name": name, "attributes": attributes}
    return complete_mapping(mapping, first, rows)


def name_parts(slugs: list[str]) -> list[int]:
    """The columns of a name split in parts, in Vietnamese order (last, middle, first: "Nguyễn
    Văn An"), or [] when the header has no split name."""
    found = []
    for headers in (LAST_NAME_HEADERS, MIDDLE_NAME_HEADERS, FIRST_NAME_HEADERS):
        i = next((i for i, s in enumerate(slugs) if s in headers), None)
        if i is not None:
            found.append(i)
    if len(found) < 2 and all(slugs[i] in _AMBIGUOUS_PARTS for i in found):
        return []
    return found


def complete_mapping(mapping: dict, first: list[str], rows: list[list[str]]) -> dict:
    """What the import derives from the header whatever columns a person chose: the split name
    columns ("name_parts", used when a row has no whole name) and, for a phone column that holds
    several numbers per cell (Google Contacts' " ::: "), the attribute keys that keep the
    others ("extra_phones"). Computed again at run time: the mapping page saves only columns."""
    mapping = dict(mapping)
    has_header = mapping.get("has_header", True)
    slugs = [slugify_header(t) for t in first] if has_header else []
    mapping["name_parts"] = [i for i in name_parts(slugs) if i != mapping.get("name")]
    phone = mapping.get("phone")
    several = phone is not None and (
        (phone < len(slugs) and slugs[phone].endswith("_value"))  # Google's "Phone 1 - Value"
        or any(phone < len(r) and SEVERAL_SEPARATOR in r[phone] for r in rows)
    )
    if several:
        used = set((mapping.get("attributes") or {}).values())
        mapping["extra_phones"] = [
            unique_key(f"phone_{n}", used) for n in range(2, 2 + EXTRA_PHONES)
        ]
    else:
        mapping["extra_phones"] = []
    return mapping


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


def tag_attribute_index(keys: list[str]) -> int | None:
    """Which of an import's attribute keys (in column order) holds the tags, if any."""
    return next((n for n, key in enumerate(keys) if key in TAG_HEADERS), None)
