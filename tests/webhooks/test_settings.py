"""Production settings never deliver to private addresses; the demo (DEBUG) and the tests may."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEY = "k8#v2Lq!r9Zp@x4Tn6Wm$b1Yc7Hs3Jd5Fg0Ae-Qu_Ro+Pi=Ok~Nl*Mj&Ih^Gf%Ed"


def allowed(tmp_path, **env) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "WEBHOOKS_ALLOW_PRIVATE_ADDRESSES"}}
    code = "from django.conf import settings; print(settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES)"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT, env={**clean, "HAVEN_VAR_DIR": str(tmp_path), "SECRET_KEY": KEY, **env},
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return result.stdout.strip().splitlines()[-1]  # after the shell's own "objects imported" line


@pytest.mark.parametrize(("env", "expected"), [({"DEBUG": "false"}, "False"), ({"DEBUG": "true"}, "True")])
def test_private_addresses_are_allowed_only_with_debug_by_default(tmp_path, env, expected):
    assert allowed(tmp_path, **env) == expected


def test_the_tests_allow_them_for_their_receiver_on_loopback():
    from django.conf import settings

    assert settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES is True
    assert settings.DEBUG is False
