"""Template parameter types: the providers' type names mapped to ours, in one table.

Every provider names parameter types its own way. Sync (and hand entry) turns whatever the provider
says into a `TemplateParam.Type`; the rules for each type (default length, format) live in
templates_app.validation.
"""

from __future__ import annotations

from templates_app.models import TemplateParam

T = TemplateParam.Type

# provider type name (lower-cased) -> our type. Sources:
# - Zalo template/info/v2 `listParams[].type` and eSMS GetZnsTemplateInfo `ListParams[].Type`
#   ("STRING" in eSMS's example; older templates also use NUMBER and DATE) — providers.md §4.2,
#   §2.6; eTelecom ListTemplates `template_params[].type` mirrors Zalo's listParams (§1.4).
# - Zalo's newer typed parameters (create-template enum 1..15, names from the Zalo Business
#   Solutions data-format article and redai-zalo-sdk types/zns.d.ts) — providers.md §4.4.
# - eSMS GetTemplate `ZNSTempDetail[].RequireType`: type_text, type_number ("digits 0-9 only, at
#   most 12"), type_date ("dd/MM/yyyy"), type_cta_url — providers.md §2.6.
PROVIDER_TYPES: dict[str, str] = {
    # Zalo listParams (old generic types)
    "string": T.TEXT,
    "text": T.TEXT,
    "number": T.NUMBER,
    "date": T.DATE,
    # Zalo typed parameters, by name ...
    "customer_name": T.CUSTOMER_NAME,
    "name": T.CUSTOMER_NAME,
    "phone_number": T.PHONE,
    "phone": T.PHONE,
    "address": T.ADDRESS,
    "code": T.CODE,
    "id": T.CODE,
    "custom_label": T.LABEL,
    "label": T.LABEL,
    "transaction_status": T.STATUS,
    "status": T.STATUS,
    "contact": T.CONTACT,
    "gender": T.TITLE,
    "personal_title": T.TITLE,
    "title": T.TITLE,
    "product_name": T.PRODUCT,
    "product": T.PRODUCT,
    "brand": T.PRODUCT,
    "quantity": T.AMOUNT,
    "amount": T.AMOUNT,
    "quantity_amount": T.AMOUNT,
    "time": T.TIME,
    "otp": T.OTP,
    "url": T.URL,
    "link": T.URL,
    "currency": T.CURRENCY,
    "vnd": T.CURRENCY,
    "bank_transfer_note": T.BANK_NOTE,
    "bank_note": T.BANK_NOTE,
    "transfer_note": T.BANK_NOTE,
    # ... and by the create-template enum number
    "1": T.CUSTOMER_NAME,
    "2": T.PHONE,
    "3": T.ADDRESS,
    "4": T.CODE,
    "5": T.LABEL,
    "6": T.STATUS,
    "7": T.CONTACT,
    "8": T.TITLE,
    "9": T.PRODUCT,
    "10": T.AMOUNT,
    "11": T.TIME,
    "12": T.OTP,
    "13": T.URL,
    "14": T.CURRENCY,
    "15": T.BANK_NOTE,
    # eSMS GetTemplate RequireType
    "type_text": T.TEXT,
    "type_number": T.DIGITS,
    "type_date": T.DATE,
    "type_cta_url": T.URL,
}


def param_type_from_provider(name: object) -> str:
    """Our TemplateParam.Type for a provider's type name; unknown names become plain text (the
    template's own length limits still apply, so nothing is left unchecked)."""
    key = str(name or "").strip().lower().replace(" ", "_").replace("-", "_")
    if key in T.values:
        return key
    return PROVIDER_TYPES.get(key, T.TEXT)
