"""Cambodian phones (issue 16) through every way a phone enters Loa: the normalizer, the import
(service, admin upload through the real views, command), the contact form, search, opt-out and
an inbound MMP reply. Numbers written with +855/00855/855 are read as written; local ones
(0..., or without the 0 Excel dropped) in the country chosen, Vietnam by default; Vietnamese
rules are unchanged (tests/contacts/test_phones.py)."""

import io
import json
from pathlib import Path

import phonenumbers
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.contacts.importing.report import country_summary
from campaigns.contacts.importing.run import contact_import_prepare, contact_import_run
from campaigns.contacts.optout import contact_opt_out, opt_out_file_process
from campaigns.contacts.search import contact_search
from campaigns.models import Contact, ContactImport, ContactList, OptOut
from providers.shared.phones import (
    PhoneResult,
    fast_mobile_kh,
    normalize_phone,
    phone_candidates,
)
from templates_app import admin as templates_admin
from tests.factories import (
    ChannelFactory,
    ContactFactory,
    ProviderAccountFactory,
    TemplateFactory,
)
from webhooks.models import InboundMessage


@pytest.fixture(autouse=True)
def _english(english):
    """Messages are asserted in English (the english fixture of tests/conftest.py)."""


KH = PhoneResult("85512345678", "", False, "KH")


# ---- the normalizer ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "+855 12 345 678",
        "+85512345678",
        "85512345678",
        "0085512345678",
        "00855 12 345 678",
        "+855 (0) 12 345 678",
        "+855 012 345 678",  # the trunk 0 written after the code
        "(+855) 12-345-678",
        "+855.12.345.678",
        "85512345678.0",  # Excel numeric cell
        "85512345678,0",
        '="+85512345678"',  # Excel's keep-as-text trick
        "＋８５５１２３４５６７８",  # full-width
        "+855\u00a012\u00a0345\u00a0678",
        85512345678,
        85512345678.0,
    ],
)
@pytest.mark.parametrize("country", ["VN", "KH"])
def test_a_number_written_with_its_code_is_read_as_written(raw, country):
    assert normalize_phone(raw, country=country) == KH


@pytest.mark.parametrize(
    "raw",
    [
        "012 345 678",
        "012345678",
        "012.345.678",
        "012-345-678",
        " 012 345 678 ",
        "12345678",  # Excel dropped the leading zero
        12345678,
        12345678.0,
        "12345678.0",
        '="012345678"',
        "０１２３４５６７８",
        "(012) 345 678",
    ],
)
def test_local_formats_read_in_cambodia(raw):
    assert normalize_phone(raw, country="KH") == KH


def test_the_same_local_number_is_read_in_the_country_chosen():
    assert normalize_phone("0971234567") == PhoneResult("84971234567")
    assert normalize_phone("0971234567", country="VN").country == "VN"
    assert normalize_phone("0971234567", country="KH") == PhoneResult(
        "855971234567", "", False, "KH"
    )
    # and without the 0 Excel dropped
    assert normalize_phone("971234567").phone == "84971234567"
    assert normalize_phone("971234567", country="KH").phone == "855971234567"
    # Vietnamese numbers written with +84/84 stay Vietnamese when Cambodia is chosen
    for raw in ("+84 97 123 4567", "84971234567", "0084971234567", "84971234567.0"):
        assert normalize_phone(raw, country="KH") == PhoneResult("84971234567"), raw
    # and the 2018 renumbering still applies to them
    assert normalize_phone("+84 168 912 3456", country="KH") == PhoneResult("84389123456", "", True)


@pytest.mark.parametrize(
    ("operator", "local"),
    [
        # Metfone (Viettel Cambodia): 097, 088, 071, 031, 060, 066, 067, 068, 090
        ("Metfone", "097 123 4567"),
        ("Metfone", "097 123 456"),
        ("Metfone", "088 123 4567"),
        ("Metfone", "071 123 4567"),
        ("Metfone", "031 234 5678"),
        ("Metfone", "060 123 456"),
        ("Metfone", "066 123 456"),
        ("Metfone", "067 123 456"),
        ("Metfone", "068 123 456"),
        ("Metfone", "090 123 456"),
        # Smart: 010, 015, 016, 069, 070, 081, 086, 087, 093, 096, 098
        ("Smart", "010 123 456"),
        ("Smart", "015 123 456"),
        ("Smart", "016 123 456"),
        ("Smart", "069 123 456"),
        ("Smart", "070 123 456"),
        ("Smart", "081 123 456"),
        ("Smart", "086 123 456"),
        ("Smart", "087 123 456"),
        ("Smart", "093 123 456"),
        ("Smart", "096 123 4567"),
        ("Smart", "098 123 456"),
        # Cellcard: 011, 012, 014, 017, 061, 076, 077, 078, 079, 085, 089, 092, 095, 099
        ("Cellcard", "011 123 456"),
        ("Cellcard", "012 123 456"),
        ("Cellcard", "012 123 4567"),
        ("Cellcard", "014 123 456"),
        ("Cellcard", "017 123 456"),
        ("Cellcard", "061 123 456"),
        ("Cellcard", "076 123 4567"),
        ("Cellcard", "077 123 456"),
        ("Cellcard", "078 123 456"),
        ("Cellcard", "079 123 456"),
        ("Cellcard", "085 123 456"),
        ("Cellcard", "089 123 456"),
        ("Cellcard", "092 123 456"),
        ("Cellcard", "095 123 456"),
        ("Cellcard", "099 123 456"),
        # Seatel, Cootel
        ("Seatel", "018 123 4567"),
        ("Cootel", "038 123 4567"),
    ],
)
def test_operators_ranges_are_mobiles(operator, local):
    national = local.replace(" ", "")[1:]
    expected = PhoneResult("855" + national, "", False, "KH")
    assert normalize_phone(local, country="KH") == expected, operator
    assert normalize_phone("+855 " + local[1:]) == expected, operator
    assert normalize_phone(national, country="KH") == expected, operator  # Excel dropped the 0
    num = phonenumbers.parse("+855" + national)
    assert phonenumbers.number_type(num) == phonenumbers.PhoneNumberType.MOBILE


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (None, "empty"),
        ("", "empty"),
        ("abc", "no digits"),
        ("1.2345E+08", "scientific notation"),
        ("8.5512E+10", "scientific notation"),
        ("012 345 678 / 012 345 679", "more than one phone"),
        ("012345678;097123456", "more than one phone"),
        ("1" * 80, "too long"),
        ("0123", "Not a valid Cambodian phone number"),
        ("01234567890", "Not a valid Cambodian phone number"),
        ("023 123 456", "Not a valid Cambodian phone number"),
        ("023 990 123", "Not a mobile number"),  # Phnom Penh fixed line
        (
            "+66 81 234 5678",
            "Loa serves Vietnam and Cambodia: +66 81 234 5678 is a number from Thailand",
        ),
        ("0066 81 234 5678", "is a number from Thailand"),
        ("+27 82 123 4567", "is a number of another country (calling code +27)"),
    ],
)
def test_refusals_in_cambodia_say_why(raw, words):
    result = normalize_phone(raw, country="KH")
    assert result.phone is None
    assert words in result.error


def test_messages_name_the_country_they_read_the_number_in():
    kh = normalize_phone("0123", country="KH").error
    assert kh == (
        "Not a valid Cambodian phone number: 0123 (a mobile has 9 or 10 digits starting with 0, "
        "like 012 345 678)"
    )
    assert "Vietnamese" in normalize_phone("0123").error
    # a +855 number is never "not Vietnamese": it is read in Cambodia, valid or not
    assert "Cambodian" in normalize_phone("+855 99").error
    assert "Vietnamese" not in normalize_phone("+855 99").error


def test_fixed_lines_when_not_mobile_only():
    assert normalize_phone("023 990 123", mobile_only=False, country="KH").phone == "85523990123"
    assert normalize_phone("+855 23 990 123", mobile_only=False).phone == "85523990123"


def test_fast_mobile_kh_is_only_a_shortcut():
    assert fast_mobile_kh("012345678") == "85512345678"
    assert fast_mobile_kh("12345678") == "85512345678"
    assert fast_mobile_kh("85512345678") == "85512345678"
    assert fast_mobile_kh("0971234567") == "855971234567"
    for raw in ["84971234567", "+85512345678", "012 345 678", "０１２３４５６７８", "00855123"]:
        assert fast_mobile_kh(raw) is None


def test_phone_candidates_read_a_local_form_in_each_country():
    assert phone_candidates("0971234567") == ["84971234567", "855971234567"]
    assert phone_candidates("+855 97 123 4567") == ["855971234567"]
    assert phone_candidates("012 345 678") == ["85512345678"]  # not a Vietnamese number
    assert phone_candidates("hello") == []


KH_PREFIXES = ["10", "11", "12", "15", "16", "17", "18", "60", "66", "69", "70", "71", "76"]
KH_PREFIXES += ["77", "78", "79", "81", "85", "86", "87", "88", "89", "92", "93", "95", "96"]
KH_PREFIXES += ["97", "98", "99", "31", "38", "23", "24", "13", "14", "19", "90", "91"]


@given(
    prefix=st.sampled_from(KH_PREFIXES),
    rest=st.integers(min_value=0, max_value=9_999_999),
    width=st.sampled_from([6, 7]),
    fmt=st.sampled_from(["0{n}", "855{n}", "+855{n}", "+855 {n}", "{n}", "00855{n}", "855{n}.0"]),
)
@settings(max_examples=400, deadline=None)
def test_cambodian_paths_agree_with_phonenumbers(prefix, rest, width, fmt):
    national = f"{prefix}{rest % 10**width:0{width}d}"
    num = phonenumbers.parse("+855" + national, None)
    is_mobile = phonenumbers.is_valid_number(num) and phonenumbers.number_type(num) in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )
    result = normalize_phone(fmt.format(n=national), country="KH")
    assert result.ok == is_mobile, (fmt, national, result)
    if is_mobile:
        assert result == PhoneResult("855" + national, "", False, "KH")


@given(st.text(max_size=30))
@settings(max_examples=300, deadline=None)
def test_never_raises_in_cambodia(raw):
    result = normalize_phone(raw, country="KH")
    assert result.ok or result.error
    if result.ok:
        assert result.phone.isdigit() and result.phone.startswith(("84", "855"))


# ---- the import ---------------------------------------------------------------------------------

CAMBODIAN_FILE = (
    "phone,name\n"
    "+855 12 345 678,Sok Dara\n"
    "0085510234567,Chan Sophea\n"
    "85597 123 4567,Kim Lina\n"
    '="088 123 4567",Vannak\n'
    "12 345 679,Excel dropped the zero\n"
    "0971234567,Local\n"
    "0961 234 567,Local too\n"
    "+84 90 123 4567,Nguyễn An\n"
    "8.5512E+10,lost digits\n"
).encode()


def _import(content: bytes, *, country: str = "", list_country: str = "VN"):
    lst = ContactList.objects.create(
        name=f"L {country or list_country}", default_country=list_country
    )
    imp = contact_import_prepare(
        file=io.BytesIO(content), filename="kh.csv", contact_list=lst, country=country
    )
    return contact_import_run(import_id=imp.pk)


@pytest.mark.django_db
def test_import_reads_local_numbers_in_cambodia_when_chosen():
    imp = _import(CAMBODIAN_FILE, country="KH")
    assert imp.status == ContactImport.Status.COMPLETED, imp.error_message
    phones = set(Contact.objects.values_list("phone", flat=True))
    assert phones == {
        "85512345678",
        "85510234567",
        "855971234567",
        "855881234567",
        "85512345679",
        "855961234567",
        "84901234567",
    }  # 0971234567 read in Cambodia is row 4's 855971234567: a duplicate
    assert (imp.imported_count, imp.duplicate_count, imp.invalid_count) == (7, 1, 1)
    assert imp.country == "KH"
    assert imp.country_counts == {"KH": 7, "VN": 1}
    assert country_summary(imp.country_counts) == "7 Cambodian numbers, 1 Vietnamese number"


@pytest.mark.django_db
def test_import_reads_the_same_file_in_vietnam_by_default():
    imp = _import(CAMBODIAN_FILE)
    assert imp.status == ContactImport.Status.COMPLETED, imp.error_message
    phones = set(Contact.objects.values_list("phone", flat=True))
    # written with +855/00855/855: Cambodian; local numbers: Vietnamese
    assert {"85512345678", "85510234567", "855971234567"} <= phones
    assert {"84971234567", "84901234567"} <= phones
    assert {"84881234567", "84961234567"} <= phones  # 088/096: mobiles in both countries
    assert imp.invalid_count == 2  # 12 345 679 is no Vietnamese mobile; 8.5512E+10
    assert imp.country == "VN"
    assert imp.country_counts == {"KH": 3, "VN": 4}


@pytest.mark.django_db
def test_an_import_without_a_choice_takes_the_lists_default():
    imp = _import(b"phone\n012345678\n0971234567\n", list_country="KH")
    assert imp.country == "KH" and imp.country_counts == {"KH": 2}
    assert set(Contact.objects.values_list("phone", flat=True)) == {"85512345678", "855971234567"}


@pytest.mark.django_db
def test_oversized_rows_are_not_counted_in_a_country():
    imp = _import(f"phone,name\n+85512345678,{'x' * 300}\n0912345678,An\n".encode())
    assert imp.invalid_count == 1 and imp.country_counts == {"VN": 1}


@pytest.mark.django_db
def test_import_command_country_option(tmp_path):
    path = tmp_path / "kh.csv"
    path.write_bytes(b"sdt,ten\n012 345 678,Sok\n0971234567,Dara\n+84912345678,An\n")
    out = io.StringIO()
    call_command("import_contacts", str(path), "--list", "Metfone", "--country", "KH", stdout=out)
    text = out.getvalue()
    assert "total=3 imported=3" in text
    assert "countries: KH=2 VN=1 (local numbers read as KH)" in text
    assert set(Contact.objects.values_list("phone", flat=True)) == {
        "85512345678",
        "855971234567",
        "84912345678",
    }
    # the default stays Vietnam
    out = io.StringIO()
    call_command("import_contacts", str(path), "--list", "VN", stdout=out)
    assert "countries: VN=2 (local numbers read as VN)" in out.getvalue()


UPLOAD = reverse("admin:campaigns_contactimport_add")


@pytest.fixture
def en_client(admin_client):
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return admin_client


@pytest.mark.django_db
@pytest.mark.parametrize(("country", "expected"), [("KH", "855971234567"), ("VN", "84971234567")])
def test_admin_upload_reads_local_numbers_in_the_country_chosen(
    en_client, django_capture_on_commit_callbacks, country, expected
):
    page = en_client.get(UPLOAD).content.decode()
    assert "Read local numbers as" in page and 'name="country"' in page
    content = "Số điện thoại,Họ tên\n0971234567,Sok Dara\n+855 12 345 678,Chan\n".encode()
    response = en_client.post(
        UPLOAD,
        {
            "merge_policy": "fill",
            "new_list_name": "Metfone",
            "country": country,
            "file": SimpleUploadedFile("kh.csv", content),
        },
    )
    imp = ContactImport.objects.get()
    map_url = reverse("admin:campaigns_contactimport_map", args=[imp.pk])
    assert response.status_code == 302 and response["Location"] == map_url
    assert imp.country == country
    with django_capture_on_commit_callbacks(execute=True):
        en_client.post(map_url, {"has_header": "1", "map_0": "phone", "map_1": "name"})
    imp.refresh_from_db()
    assert imp.status == ContactImport.Status.COMPLETED, imp.error_message
    assert set(Contact.objects.values_list("phone", flat=True)) == {expected, "85512345678"}
    html = en_client.get(reverse("admin:campaigns_contactimport_change", args=[imp.pk]))
    html = html.content.decode()
    summary = "2 Cambodian numbers" if country == "KH" else "1 Cambodian number, 1 Vietnamese"
    assert 'id="count-countries"' in html and summary in html
    progress = en_client.get(reverse("admin:campaigns_contactimport_progress", args=[imp.pk]))
    assert summary in progress.json()["countries"]


@pytest.mark.django_db
def test_upload_form_defaults_to_the_lists_country(en_client):
    lst = ContactList.objects.create(name="Phnom Penh", default_country="KH")
    page = en_client.get(UPLOAD, {"contact_list": lst.pk}).content.decode()
    assert '<option value="KH" selected>' in page
    # a list's default is set on its admin page
    change = en_client.get(reverse("admin:campaigns_contactlist_change", args=[lst.pk]))
    assert 'name="default_country"' in change.content.decode()


# ---- the contact form, search, opt-out ------------------------------------------------------------


def _contact_post(**data):
    return {
        "name": "Sok Dara",
        "attributes": "{}",
        "opt_outs-TOTAL_FORMS": "0",
        "opt_outs-INITIAL_FORMS": "0",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        **data,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("phone", "country", "expected"),
    [
        ("012 345 678", "KH", "85512345678"),
        ("+855 12 345 678", "VN", "85512345678"),
        ("85512345678", "VN", "85512345678"),
        ("0971234567", "KH", "855971234567"),
        ("0971234567", "VN", "84971234567"),
        ("0971234567", "", "84971234567"),  # no choice: Vietnam
    ],
)
def test_contact_form_reads_the_phone_in_the_country_chosen(en_client, phone, country, expected):
    response = en_client.post(
        reverse("admin:campaigns_contact_add"), _contact_post(phone=phone, country=country)
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Contact.objects.get().phone == expected


@pytest.mark.django_db
def test_contact_form_refusal_names_the_country(en_client):
    response = en_client.post(
        reverse("admin:campaigns_contact_add"), _contact_post(phone="0123", country="KH")
    )
    assert "Not a valid Cambodian phone number" in response.content.decode()
    page = en_client.get(reverse("admin:campaigns_contact_add")).content.decode()
    assert "Read a local number as" in page


@pytest.mark.django_db
def test_search_takes_both_forms_and_both_countries():
    vn = ContactFactory(phone="84971234567")
    kh = ContactFactory(phone="855971234567")
    other = ContactFactory(phone="85512345678")
    found = lambda term: set(contact_search(queryset=Contact.objects.all(), term=term))  # noqa: E731
    assert found("0971234567") == {vn, kh}  # a local form: both countries
    assert found("+855 97 123 4567") == {kh}
    assert found("84971234567") == {vn}
    assert found("012 345 678") == {other}
    assert found("855") == {kh, other}  # a prefix
    assert found("097") == {vn, kh}


@pytest.mark.django_db
def test_opt_out_accepts_cambodian_numbers(tmp_path):
    contact_opt_out(phone="+855 12 345 678")
    contact_opt_out(phone="097 123 4567", country="KH")
    assert set(OptOut.objects.values_list("contact__phone", flat=True)) == {
        "85512345678",
        "855971234567",
    }
    result = opt_out_file_process(
        file=io.BytesIO(b"phone\n010 123 456\n+85518 123 4567\n"), country="KH"
    )
    assert result.invalid == 0
    assert Contact.objects.filter(phone__in=["85510123456", "855181234567"]).count() == 2


# ---- an inbound reply (MMP conversation webhook, seed 000) --------------------------------------

SEED = json.loads(
    (
        Path(__file__).resolve().parents[1] / "fixtures" / "mmp" / "webhook_conversation.json"
    ).read_text()
)


def _reply(client, phone: str, country: str, text: str = "STOP"):
    account = ProviderAccountFactory(kind="metfone_mmp", secrets={"api_key": "k"})
    channel = ChannelFactory(
        account=account, kind="sms", official_account=None, external_id=SEED["channelId"]
    )
    payload = {
        **SEED,
        "message": {"type": "text", "message": text},
        "contact": {**SEED["contact"], "phone": phone, "country": country},
    }
    url = reverse("webhooks:receive", args=[account.webhook_token])
    response = client.post(url, json.dumps(payload), content_type="application/json")
    assert response.status_code == 200
    return channel


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("phone", "country", "expected"),
    [
        ("012 345 678", "KH", "85512345678"),  # local, the payload says Cambodia
        ("0971234567", "KH", "855971234567"),
        ("0971234567", "VN", "84971234567"),
        ("+85512345678", "VN", "85512345678"),  # written with its code: as written
        ("85512345678", "", "85512345678"),
        ("0971234567", "", "84971234567"),  # no country: Vietnam
    ],
)
def test_an_inbound_reply_reads_the_phone_in_the_contacts_country(client, phone, country, expected):
    channel = _reply(client, phone, country)
    msg = InboundMessage.objects.get()
    assert msg.contact is not None and msg.contact.phone == expected
    assert OptOut.objects.filter(contact=msg.contact, channel_kind=channel.kind).exists()


@pytest.mark.django_db(transaction=True)
def test_an_inbound_reply_from_another_country_ties_no_contact(client):
    _reply(client, "081 234 5678", "TH", text="hello")
    assert InboundMessage.objects.get().contact is None
    assert not Contact.objects.exists()


# ---- a test send -----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["+855 12 345 678", "0085512345678", "85512345678"])
def test_a_test_send_phone_may_be_cambodian(raw):
    """templates_app's test-send form reads a number written with +855 as written."""
    template = TemplateFactory(params=[])
    channel = ChannelFactory(account=template.account, kind=template.channel_kind)
    form = templates_admin.TestSendForm(
        data={"channel": channel.pk, "phone": raw}, template=template, params=[]
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data["phone"] == "85512345678"
