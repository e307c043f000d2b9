"""Secrets sealed at rest: a column holds a Fernet token (AES-128-CBC + HMAC-SHA256), the
model's attribute the plain value, so every caller keeps reading `subscription.secret`.

Keys: settings.WEBHOOKS_SEALING_KEYS (env, comma-separated Fernet keys): the first seals,
every one unseals — rotation is a new key put first, the old kept until `reseal` ran. Unset:
one key derived from SECRET_KEY (HKDF-SHA256), so rotating SECRET_KEY then needs the old
SECRET_KEY's `derived_key(old)` listed in WEBHOOKS_SEALING_KEYS.

A value that is not a Fernet token is a secret stored before sealing (legacy plaintext): it
reads as it is until it is saved again. A token no key opens is an error naming the setting,
never an empty or wrong secret. Sealing is randomized, so a sealed column cannot be searched:
the field refuses every lookup but `isnull`.
"""

from __future__ import annotations

import base64
import functools
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

# Every Fernet token starts so: version byte 0x80, then the timestamp's high bytes (zero).
SEALED_PREFIX = "gAAAAA"
HKDF_INFO = b"haven webhooks sealing v1"


class SealingError(ImproperlyConfigured):
    """A sealed value none of the configured keys opens (a key missing or wrong)."""


def derived_key(secret_key: str | None = None) -> str:
    """The Fernet key derived from SECRET_KEY (or the one given: the old one, when rotating it)."""
    source = str(settings.SECRET_KEY) if secret_key is None else secret_key
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO)
    raw = hkdf.derive(source.encode())
    return base64.urlsafe_b64encode(raw).decode("ascii")


def configured_keys() -> tuple[str, ...]:
    return tuple(settings.WEBHOOKS_SEALING_KEYS) or (derived_key(),)


@functools.lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k) for k in keys])


def fernet() -> MultiFernet:
    return _fernet(configured_keys())


def is_sealed(value: str) -> bool:
    return value.startswith(SEALED_PREFIX)


def seal(plain: str) -> str:
    return fernet().encrypt(plain.encode()).decode("ascii")


def unseal(stored: str) -> str:
    """The plain value of a column: a token opened with any key, legacy plaintext as it is."""
    if not is_sealed(stored):
        return stored
    try:
        return fernet().decrypt(stored.encode("ascii")).decode()
    except InvalidToken:
        source = "WEBHOOKS_SEALING_KEYS" if settings.WEBHOOKS_SEALING_KEYS else "the key derived from SECRET_KEY"
        raise SealingError(
            f"A sealed webhook secret opens with none of the keys configured ({source}): list the key it "
            "was sealed with in WEBHOOKS_SEALING_KEYS (after the new one), e.g. after rotating SECRET_KEY "
            "its old derived key (hosting.webhooks.sealing.derived_key(old_secret_key))."
        ) from None


class SealedCharField(models.CharField):
    """A CharField stored sealed (`max_length` is the column's: a sealed value is about
    2.3 × the plain one plus 80 characters). Not searchable: only `isnull` lookups."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        return None if value is None else unseal(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return None if value is None else seal(str(value))

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name != "isnull":
            return None  # FieldError: "Unsupported lookup '<name>' for SealedCharField"
        return super().get_lookup(lookup_name)


def reseal(model: type[models.Model], field: str, *, using: str = "default") -> int:
    """Seal again every row's `field` with the first key (after a rotation; legacy plaintext
    sealed for the first time). Returns the number of rows written."""
    rows = list(model._base_manager.using(using).only("pk", field))
    for row in rows:
        row.save(update_fields=[field], using=using)
    return len(rows)
