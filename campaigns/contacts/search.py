"""The text a contact is searched by (Contact.search_text): computed for every imported row and
whenever the admin saves a contact."""

from __future__ import annotations

from providers.shared.text import fold

_FOLD_CACHE: dict[str, str] = {}
_NAME_CACHE: dict[str, str] = {}


def contact_search_text(name: str) -> str:
    """The indexed Contact.search_text: the name folded (no diacritics) and lower-cased.

    The phone is left out on purpose: phone searches use the phone column's own index, and its
    digits would add ~40% to the trigram index (and its cost on every import). Names repeat
    ("Nguyễn Thị Lan") and their words repeat even more, so each is folded once; folding is per
    character, so word by word equals providers.shared.text.search_key(name) (a test checks it).
    """
    if not name:
        return ""
    folded = _NAME_CACHE.get(name)
    if folded is None:
        if name.isascii():
            folded = name.lower()
        else:
            parts = []
            for word in name.split(" "):
                f = _FOLD_CACHE.get(word)
                if f is None:
                    f = fold(word).lower()
                    if len(_FOLD_CACHE) < 100_000:
                        _FOLD_CACHE[word] = f
                parts.append(f)
            folded = " ".join(parts)
        folded = folded[:255]
        if len(_NAME_CACHE) < 200_000:
            _NAME_CACHE[name] = folded
    return folded
