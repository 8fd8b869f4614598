"""Finding contacts: the text a contact is searched by (Contact.search_text, computed for every
imported row and whenever the admin saves a contact) and the search itself (the contacts
changelist's search box)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from campaigns.models import Contact
from providers.shared.phones import CALLING_CODES, normalize_phone
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


def contact_search(*, queryset: QuerySet[Contact], term: str) -> QuerySet[Contact]:
    """Phones by their normalized prefix (an index range), names through the folded text."""
    term = (term or "").strip()
    if not term:
        return queryset
    compact = term.replace(" ", "").replace(".", "").replace("-", "")
    digits = compact.lstrip("+")
    if digits.isdigit():
        q = Q()
        if len(digits) >= 9:
            # A whole number: a local form (0971234567 is valid in both countries) is read in
            # each served country, a number written with its code as written.
            phones = sorted(
                {
                    found
                    for country in CALLING_CODES
                    if (found := normalize_phone(term, mobile_only=False, country=country).phone)
                }
            )
            if len(phones) == 1:
                q = Q(phone=phones[0])
            elif phones:
                q = Q(phone__in=phones)
        # A prefix typed as the user knows it: 0987…, 84987…, +84 987…, 012…, +855 12…
        if digits.startswith(("84", "855")):
            prefixes = [digits]
        elif digits.startswith("0"):
            prefixes = [code + digits[1:] for code in CALLING_CODES.values()]
        elif q:
            return queryset.filter(q)
        else:
            # Digits from the middle or the end of a number: no index can help, but the
            # paginator stops at the first page of matches.
            return queryset.filter(phone__contains=digits)
        for prefix in prefixes:
            # A range on the unique index: works under any collation, unlike LIKE 'x%'.
            upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
            q |= Q(phone__gte=prefix, phone__lt=upper)
        return queryset.filter(q)
    folded = fold(term).lower()
    q = Q()
    for word in folded.split():
        q &= Q(search_text__contains=word)
    return queryset.filter(q)
