"""One error model: every provider and Zalo code lands in one of five classes, each exercised."""

import pytest

from providers.base import ErrorClass
from providers.errors import (
    ESMS_CODES,
    TWIRP_CODES,
    ZALO_ERRORS,
    classify_esms,
    classify_http_status,
    classify_twirp,
    classify_zalo,
    explain,
)

R, A, D, P, C = (
    ErrorClass.RETRYABLE,
    ErrorClass.AMBIGUOUS,
    ErrorClass.DEFERRED,
    ErrorClass.PERMANENT,
    ErrorClass.CONFIGURATION,
)


@pytest.mark.parametrize(
    "code,klass",
    [
        # retryable: Zalo's unknown error
        (-100, R),
        # deferred: quota and the night window (providers.md §4.5 [I])
        (-133, D),
        (-144, D),
        (-1441, D),
        (-147, D),
        (-160, D),
        (-126, D),
        # permanent for this recipient
        (-108, P),
        (-114, P),
        (-118, P),
        (-119, P),
        (-139, P),
        (-141, P),
        (-1121, P),
        # configuration: stop the campaign and tell a human
        (-101, C),
        (-109, C),
        (-115, C),
        (-124, C),
        (-131, C),
        (-135, C),
        (-146, C),
        (-220, C),
        (-122, C),
    ],
)
def test_zalo_codes_classified(code, klass):
    assert classify_zalo(code)[0] == klass
    assert classify_zalo(str(code))[0] == klass  # codes arrive as text too
    assert explain(str(code))  # every code has a sentence for the marketer


def test_every_zalo_code_has_a_class_and_a_sentence():
    for code, (klass, text) in ZALO_ERRORS.items():
        assert klass in ErrorClass
        assert str(text), code


def test_unknown_zalo_code_is_permanent_and_says_its_number():
    klass, text = classify_zalo(-9999)
    assert klass == P
    assert "-9999" in text
    assert classify_zalo(None)[0] == P


@pytest.mark.parametrize(
    "code,klass",
    [
        (160, R),  # TPS exceeded
        (105, R),  # not found yet (status APIs)
        (124, A),  # duplicate outside a send (a send treats it as success)
        (99, P),
        (108, P),
        (177, P),
        (101, C),
        (103, C),
        (140, C),
        (204, C),
        (789, C),
        (799, C),
        (802, C),
    ],
)
def test_esms_codes_classified(code, klass):
    assert classify_esms(code)[0] == klass
    assert explain(str(code)).startswith("eSMS")


def test_every_documented_esms_code_is_in_the_table():
    documented = {
        99,
        100,
        101,
        102,
        103,
        104,
        105,
        106,
        107,
        108,
        110,
        115,
        118,
        120,
        124,
        140,
        143,
        146,
        160,
        163,
        171,
        177,
        199,
        201,
        204,
        210,
        300,
        301,
        687,
        789,
        790,
        791,
        799,
        801,
        802,
        851,
        852,
        853,
        854,
    }  # providers.md §2.4
    missing = documented - set(ESMS_CODES) - {100}  # 100 is success, not an error
    assert not missing


def test_unknown_esms_code_pauses_rather_than_failing_everyone():
    assert classify_esms(555)[0] == C
    assert "555" in classify_esms(555)[1]
    assert classify_esms("abc")[0] == C


@pytest.mark.parametrize(
    "code,status,klass",
    [
        ("invalid_argument", 400, C),
        ("unauthenticated", 401, C),
        ("permission_denied", 403, C),
        ("bad_route", 404, C),
        ("not_found", 404, C),
        ("resource_exhausted", 429, R),
        ("aborted", 409, R),
        ("already_exists", 409, A),
        ("internal", 500, A),
        ("unavailable", 503, A),
        ("deadline_exceeded", 408, A),
    ],
)
def test_twirp_envelope_codes(code, status, klass):
    assert classify_twirp(code, "", status) == klass
    assert explain(code)


def test_zalo_code_quoted_in_an_envelope_wins():
    assert classify_twirp("invalid_argument", "zalo error -118: Zalo account not existed", 400) == P
    assert classify_twirp("invalid_argument", "error (-133) template at night", 400) == D
    # numbers that are not Zalo codes do not count
    assert classify_twirp("invalid_argument", "phone 0901-118-222 wrong", 400) == C


def test_unknown_twirp_code_falls_back_to_http_status():
    assert classify_twirp("something_new", "", 503) == A
    assert classify_twirp("something_new", "", 401) == C
    assert classify_twirp("something_new", "", None) == A
    assert set(TWIRP_CODES) >= {"invalid_argument", "unauthenticated", "bad_route", "internal"}


@pytest.mark.parametrize(
    "status,klass",
    [
        (401, C),
        (403, C),
        (404, C),
        (400, C),
        (422, C),
        (408, R),
        (429, R),
        (409, A),
        (500, A),
        (502, A),
        (504, A),
    ],
)
def test_bare_http_status(status, klass):
    assert classify_http_status(status) == klass


def test_transport_codes_are_explained():
    for code in ("read_timeout", "connection_reset", "connect_error", "http_429", "not_found"):
        assert explain(code)
    assert explain("") == ""
    assert explain("no-such-code") == ""
