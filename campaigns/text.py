"""Text helpers shared by contacts, search and inbound keywords."""

import unicodedata

_SPECIAL = str.maketrans({"đ": "d", "Đ": "D"})


def fold(text: str) -> str:
    """Remove Vietnamese diacritics: "Nguyễn Đức" -> "Nguyen Duc" (đ is a letter, not an accent)."""
    decomposed = unicodedata.normalize("NFD", (text or "").translate(_SPECIAL))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def search_key(*parts: str) -> str:
    return " ".join(fold(p).lower() for p in parts if p)[:255]
