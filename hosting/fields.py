"""Model fields for values with one canonical spelling."""

import re

from django.core.exceptions import ValidationError
from django.db import models

_MAC_SPELLINGS = re.compile(
    r"""^(?:
        [0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}   # aa:bb:cc:dd:ee:ff or aa-bb-…
      | [0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}              # aabb.ccdd.eeff (Cisco)
      | [0-9a-f]{12}                                       # aabbccddeeff
    )$""",
    re.VERBOSE,
)


def normalize_mac(value: str) -> str:
    """Return a MAC address as lower-case colon-separated octets, or raise ValidationError."""
    text = str(value).strip().lower()
    if not _MAC_SPELLINGS.match(text):
        raise ValidationError(
            "%(value)s is not a MAC address (expected six hex octets, e.g. 02:1a:2b:3c:4d:5e).",
            code="invalid_mac",
            params={"value": value},
        )
    digits = re.sub(r"[^0-9a-f]", "", text)
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


class MACAddressField(models.CharField):
    """A MAC address stored in one spelling, whatever spelling came in."""

    description = "MAC address"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 17)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("max_length") == 17:
            del kwargs["max_length"]
        return name, path, args, kwargs

    def to_python(self, value):
        if value in self.empty_values:
            return value
        return normalize_mac(value)

    def pre_save(self, model_instance, add):
        # Normalise on every insert and save (not in get_prep_value: lookups such as a
        # partial-MAC search must stay free-form).
        value = self.to_python(getattr(model_instance, self.attname))
        setattr(model_instance, self.attname, value)
        return value
