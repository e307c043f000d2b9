"""Subscriptions' signing secrets are sealed at rest: the column holds a Fernet token, never
the secret, while every caller reads the plain secret; two keys rotate (the first seals, both
unseal); a secret stored before sealing still reads until it is saved again; a token no key
opens is a clear error; the column cannot be searched; the migration seals what was there."""

import importlib
from types import SimpleNamespace

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import FieldError
from django.db import connection
from django.test import override_settings

from hosting.env import ConfigError, env_fernet_keys
from hosting.webhooks import sealing, services
from hosting.webhooks.models import EventType, Subscription

pytestmark = pytest.mark.django_db
OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
migration = importlib.import_module("hosting.webhooks.migrations.0002_seal_secrets")


def stored(subscription: Subscription) -> str:
    """The column as the database holds it (a raw cursor: no field, no unsealing)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM webhooks_subscription WHERE id = %s", [subscription.pk])
        return cursor.fetchone()[0]


def store_raw(subscription: Subscription, value: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE webhooks_subscription SET secret = %s WHERE id = %s", [value, subscription.pk])


def subscribed() -> Subscription:
    return services.subscribe(tenant=None, url="http://127.0.0.1:9/haven", events=[EventType.INVOICE_ISSUED])


def test_the_column_holds_a_sealed_token_and_the_model_the_secret():
    subscription = subscribed()
    secret = subscription.secret
    assert secret.startswith("whsec_")
    raw = stored(subscription)
    assert raw != secret
    assert secret not in raw
    assert raw.startswith(sealing.SEALED_PREFIX)
    assert Subscription.objects.get(pk=subscription.pk).secret == secret
    assert Subscription.objects.values_list("secret", flat=True).get(pk=subscription.pk) == secret
    # Sealing is randomized: saved again, another token for the same secret.
    subscription.save(update_fields=["secret"])
    assert stored(subscription) != raw
    assert Subscription.objects.get(pk=subscription.pk).secret == secret


def test_a_rotated_secret_is_sealed_too():
    subscription = subscribed()
    rotated = services.rotate_secret(subscription)
    assert rotated.secret not in stored(subscription)
    assert Subscription.objects.get(pk=subscription.pk).secret == rotated.secret


def test_with_no_keys_set_the_key_is_derived_from_secret_key_and_changes_with_it(settings):
    assert settings.WEBHOOKS_SEALING_KEYS == []
    assert sealing.configured_keys() == (sealing.derived_key(),)
    assert sealing.derived_key("another secret key") != sealing.derived_key()
    Fernet(sealing.derived_key())  # a valid Fernet key


def test_two_keys_rotate_old_rows_read_and_reseal_moves_them_to_the_new_key():
    with override_settings(WEBHOOKS_SEALING_KEYS=[OLD]):
        subscription = subscribed()
        secret = subscription.secret
        sealed_old = stored(subscription)
    with override_settings(WEBHOOKS_SEALING_KEYS=[NEW, OLD]):
        assert Subscription.objects.get(pk=subscription.pk).secret == secret  # the old key still opens it
        assert sealing.reseal(Subscription, "secret") == Subscription.objects.count()
        sealed_new = stored(subscription)
    assert sealed_new != sealed_old
    with override_settings(WEBHOOKS_SEALING_KEYS=[NEW]):  # the old key dropped after resealing
        assert Subscription.objects.get(pk=subscription.pk).secret == secret
        assert Fernet(NEW).decrypt(sealed_new.encode()).decode() == secret


def test_a_token_no_configured_key_opens_is_a_clear_error():
    with override_settings(WEBHOOKS_SEALING_KEYS=[OLD]):
        subscription = subscribed()
    with override_settings(WEBHOOKS_SEALING_KEYS=[NEW]), pytest.raises(sealing.SealingError) as failed:
        Subscription.objects.get(pk=subscription.pk)
    assert "WEBHOOKS_SEALING_KEYS" in str(failed.value)
    # Sealed with SECRET_KEY's derived key, read after SECRET_KEY changed: the message says so.
    with override_settings(SECRET_KEY="a-rotated-secret-key"), pytest.raises(sealing.SealingError) as failed:
        Subscription.objects.get(pk=subscription.pk)
    assert "derived from SECRET_KEY" in str(failed.value)


def test_a_malformed_key_in_the_environment_stops_the_process():
    assert env_fernet_keys("K", environ={"K": f"{NEW}, {OLD}"}) == [NEW, OLD]
    assert env_fernet_keys("K", environ={}) == []
    for bad in ("not-a-key", NEW[:-4], f"{NEW},", "é" * 44):
        with pytest.raises(ConfigError, match="K"):
            env_fernet_keys("K", environ={"K": bad})


def test_a_secret_stored_before_sealing_reads_until_saved_again():
    subscription = subscribed()
    store_raw(subscription, "whsec_legacy-plaintext")
    assert Subscription.objects.get(pk=subscription.pk).secret == "whsec_legacy-plaintext"
    Subscription.objects.get(pk=subscription.pk).save()
    assert stored(subscription).startswith(sealing.SEALED_PREFIX)
    assert Subscription.objects.get(pk=subscription.pk).secret == "whsec_legacy-plaintext"


def test_the_sealed_column_cannot_be_searched():
    subscription = subscribed()
    for lookup in ("secret", "secret__startswith", "secret__in"):
        with pytest.raises(FieldError, match="Unsupported lookup"):
            Subscription.objects.filter(**{lookup: subscription.secret}).exists()
    assert Subscription.objects.filter(secret__isnull=False).count() == 1


def test_the_migration_seals_plaintext_rows_and_its_reverse_unseals_them():
    from django.apps import apps

    subscription = subscribed()
    store_raw(subscription, "whsec_from-before")
    editor = SimpleNamespace(connection=connection, quote_name=connection.ops.quote_name)
    migration.seal_existing(apps, editor)
    assert stored(subscription).startswith(sealing.SEALED_PREFIX)
    assert Subscription.objects.get(pk=subscription.pk).secret == "whsec_from-before"
    migration.unseal_existing(apps, editor)
    assert stored(subscription) == "whsec_from-before"
