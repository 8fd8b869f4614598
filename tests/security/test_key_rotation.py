"""Key rotation: prepend a new key, `rotate_secrets`, drop the old key, and every secret still
decrypts; without the rotation, dropping the old key would lose them."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.test import override_settings

from providers import crypto
from providers.models import OfficialAccount, ProviderAccount
from tests.factories import OfficialAccountFactory, ProviderAccountFactory

pytestmark = pytest.mark.django_db

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()


def make_secrets(n: int = 7) -> list[int]:
    ids = []
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        for i in range(n):
            acc = ProviderAccountFactory(
                kind="esms", secrets={"api_key": f"api-{i:04d}", "secret_key": f"sec-{i:04d}"}
            )
            oa = OfficialAccountFactory(account=acc)
            oa.set_secret(f"oa-secret-{i:04d}")
            oa.save()
            ids.append(acc.pk)
        ProviderAccountFactory()  # no secrets at all: nothing to rotate
    return ids


def test_rotate_then_drop_the_old_key(capsys):
    ids = make_secrets()
    before = dict(ProviderAccount.objects.values_list("pk", "secrets_encrypted"))
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        call_command("rotate_secrets", "--batch-size", "3")
        out = capsys.readouterr().out
        assert "providers.ProviderAccount: re-encrypted 7, already on the first key 0" in out
        assert "empty 1" in out
        assert "providers.OfficialAccount: re-encrypted 7" in out
        # a second run finds nothing to do, and --check agrees
        call_command("rotate_secrets")
        assert "re-encrypted 0, already on the first key 7" in capsys.readouterr().out
        call_command("rotate_secrets", "--check")
    after = dict(ProviderAccount.objects.values_list("pk", "secrets_encrypted"))
    assert all(before[i] != after[i] for i in ids)
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):  # the old key is gone
        for i, pk in enumerate(ids):
            acc = ProviderAccount.objects.get(pk=pk)
            assert acc.get_secrets() == {"api_key": f"api-{i:04d}", "secret_key": f"sec-{i:04d}"}
            assert OfficialAccount.objects.get(account=acc).get_secret() == f"oa-secret-{i:04d}"


def test_without_rotation_dropping_the_old_key_loses_the_secrets():
    ids = make_secrets(1)
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]), pytest.raises(ImproperlyConfigured):
        ProviderAccount.objects.get(pk=ids[0]).get_secrets()


def test_check_and_dry_run_write_nothing_and_report_pending_rows(capsys):
    make_secrets(2)
    before = list(ProviderAccount.objects.values_list("secrets_encrypted", flat=True))
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        call_command("rotate_secrets", "--dry-run")
        assert "would re-encrypt 2" in capsys.readouterr().out
        with pytest.raises(CommandError, match="4 secret"):  # 2 accounts + 2 OAs
            call_command("rotate_secrets", "--check")
    assert list(ProviderAccount.objects.values_list("secrets_encrypted", flat=True)) == before


def test_an_undecryptable_secret_is_reported_not_lost(capsys):
    make_secrets(2)
    stranger = Fernet.generate_key().decode()
    with override_settings(FIELD_ENCRYPTION_KEYS=[stranger]):
        odd = ProviderAccountFactory(kind="esms", secrets={"api_key": "made-with-stranger"})
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        with pytest.raises(CommandError, match="1 secret"):
            call_command("rotate_secrets")
        out = capsys.readouterr().out
        assert f"undecryptable 1 (ids {odd.pk})" in out
        # the others were rotated all the same
        assert "re-encrypted 2" in out
    odd.refresh_from_db()
    with override_settings(FIELD_ENCRYPTION_KEYS=[stranger]):
        assert odd.get_secrets() == {"api_key": "made-with-stranger"}


def test_a_concurrent_save_is_not_overwritten():
    """The compare-and-set: a row re-saved between the read and the write keeps the new value."""
    from providers.management.commands import rotate_secrets

    (pk,) = make_secrets(1)
    real_rotate = crypto.rotate

    def rotate_while_admin_saves(token):
        with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
            acc = ProviderAccount.objects.get(pk=pk)
            acc.set_secrets({"api_key": "typed-meanwhile"})
            acc.save()
        return real_rotate(token)

    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        from unittest import mock

        with mock.patch.object(crypto, "rotate", side_effect=rotate_while_admin_saves):
            rotate_secrets.secrets_rotate()
        assert ProviderAccount.objects.get(pk=pk).get_secrets() == {"api_key": "typed-meanwhile"}


def test_no_key_configured_is_a_clear_error():
    with override_settings(FIELD_ENCRYPTION_KEYS=[]), pytest.raises(CommandError, match="empty"):
        call_command("rotate_secrets")
