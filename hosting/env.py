"""Typed readers for configuration from the environment.

Each reader returns the value or its default and refuses a value it cannot parse with
a one-line message naming the variable, so a mistyped setting stops the process at
start-up instead of turning into odd behaviour later.
"""

import base64
import binascii
import os
from collections.abc import Mapping
from typing import overload

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(SystemExit):
    """A setting is missing or malformed; the process must not start.

    A SystemExit, so that `manage.py`, gunicorn and celery print the one line and stop
    instead of a traceback that buries it.
    """

    def __init__(self, message: str):
        super().__init__(f"haven: configuration error: {message}")


@overload
def env_str(name: str, default: str, environ: Mapping[str, str] = ...) -> str: ...
@overload
def env_str(name: str, default: None = None, environ: Mapping[str, str] = ...) -> str | None: ...
def env_str(name: str, default: str | None = None, environ: Mapping[str, str] = os.environ) -> str | None:
    """The variable's value (stripped), or `default` when it is unset or blank."""
    value = environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def env_bool(name: str, default: bool, environ: Mapping[str, str] = os.environ) -> bool:
    value = environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name}={value!r} is not a boolean (use one of: true, false, 1, 0, yes, no, on, off)")


def env_int(
    name: str,
    default: int,
    environ: Mapping[str, str] = os.environ,
    minimum: int | None = None,
) -> int:
    value = environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a whole number") from None
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name}={number} must be at least {minimum}")
    return number


def env_list(name: str, default: list[str], environ: Mapping[str, str] = os.environ) -> list[str]:
    value = environ.get(name)
    if value is None or value.strip() == "":
        return list(default)
    items = [item.strip() for item in value.split(",")]
    if any(item == "" for item in items):
        raise ConfigError(f"{name}={value!r} has an empty item (comma-separated, no blanks)")
    return items


def env_url(
    name: str,
    default: str,
    schemes: tuple[str, ...],
    environ: Mapping[str, str] = os.environ,
) -> str:
    value = env_str(name, default, environ)
    assert value is not None
    scheme, sep, _rest = value.partition("://")
    if not sep or scheme not in schemes:
        raise ConfigError(
            f"{name}={value!r} must be a URL starting with one of: {', '.join(s + '://' for s in schemes)}"
        )
    return value


def env_fernet_keys(name: str, environ: Mapping[str, str] = os.environ) -> list[str]:
    """Comma-separated Fernet keys (url-safe base64 of 32 bytes, as `Fernet.generate_key()`
    prints them), in order; [] when unset."""
    keys = env_list(name, [], environ)
    for i, key in enumerate(keys, 1):
        try:
            raw = base64.urlsafe_b64decode(key.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ConfigError(
                f"{name}: key {i} is not a Fernet key (url-safe base64 of 32 bytes; make one with "
                '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`)'
            )
    return keys
