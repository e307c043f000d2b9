"""Configuration from the environment: typed, strict, and safe in production."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hosting.env import ConfigError, env_bool, env_int, env_list, env_url

ROOT = Path(__file__).resolve().parent.parent

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "k8#v2Lq!r9Zp@x4Tn6Wm$b1Yc7Hs3Jd5Fg0Ae-Qu_Ro+Pi=Ok~Nl*Mj&Ih^Gf%Ed",
    "ALLOWED_HOSTS": "haven.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://haven.example.com",
    "DATABASE_URL": "postgres://haven@127.0.0.1:5432/haven",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}


def manage(*args: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    unset = {"DEBUG", "SECRET_KEY", "HTTPS", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    clean = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "HAVEN_VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_is_clean_with_webhook_sealing_keys_set(tmp_path):
    keys = "3q2-7wBBV2ZyLdcBtKFVGPGv0qsGPaDrEi2thXXUqkE=,kM0Ph7Q4XVd5dLQv7lGv9sbBJ2g4UCpKCx1m0R8dNjU="
    result = manage("check", "--deploy", "--fail-level", "WARNING", env={**PRODUCTION, "WEBHOOKS_SEALING_KEYS": keys},
                    tmp_path=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_collectstatic_works_and_whitenoise_serves_the_favicon_and_the_api_docs_with_debug_off(tmp_path):
    collected = manage("collectstatic", "--noinput", env=PRODUCTION, tmp_path=tmp_path)
    assert collected.returncode == 0, collected.stderr
    script = """
import re
from django.test import Client
c = Client(HTTP_HOST="haven.example.com")
favicon = c.get("/favicon.ico", secure=True)
icon = c.get(favicon["Location"], secure=True)
print("favicon", favicon.status_code, favicon["Location"], icon.status_code, icon["Content-Type"],
      b"".join(icon.streaming_content)[:4].hex())
docs = c.get("/api/v1/docs/", secure=True)
bundle = re.search(r'<script src="([^"]+swagger-ui-bundle[^"]*)"', docs.content.decode())[1]
print("docs", docs.status_code, bundle, c.get(bundle, secure=True).status_code)
"""
    served = manage("shell", "--no-imports", "-c", script, env=PRODUCTION, tmp_path=tmp_path)
    assert served.returncode == 0, served.stderr
    favicon, docs = (line.split()[1:] for line in served.stdout.splitlines())
    redirect, location, status, content_type, magic = favicon
    assert (redirect, status, magic) == ("302", "200", "00000100")
    assert re.fullmatch(r"/static/haven/favicon\.[0-9a-f]{12}\.ico", location)  # hashed: cached for good
    assert content_type in ("image/x-icon", "image/vnd.microsoft.icon")
    page, bundle, bundle_status = docs
    assert (page, bundle_status) == ("200", "200")
    assert re.fullmatch(r"/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle\.[0-9a-f]{12}\.js", bundle)


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    result = manage("check", env=env, tmp_path=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "haven: configuration error: SECRET_KEY must be set when DEBUG is off "
        "(export SECRET_KEY=<50+ random characters>)"
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG='maybe' is not a boolean"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL='mysql://x/y' must be a URL starting with one of"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL='localhost:6379' must be a URL"),
        ("DB_CONN_MAX_AGE", "-1", "DB_CONN_MAX_AGE=-1 must be at least 0"),
        ("ALLOWED_HOSTS", "a,,b", "has an empty item"),
        ("WEBHOOKS_SEALING_KEYS", "not-a-fernet-key", "WEBHOOKS_SEALING_KEYS: key 1 is not a Fernet key"),
    ],
)
def test_a_malformed_setting_stops_start_up_with_one_line(tmp_path, name, value, message):
    result = manage("check", env={**PRODUCTION, name: value}, tmp_path=tmp_path)
    assert result.returncode == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_with_nothing_set_haven_runs_embedded(tmp_path):
    script = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL)"
    )
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"}}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "hosting.settings", "DEBUG": "true", "HAVEN_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["django.db.backends.sqlite3", "filesystem://"]
    assert (tmp_path / "celery" / "broker").is_dir()


# --- the typed readers themselves -----------------------------------------------------------


def test_env_bool_reads_the_usual_spellings():
    assert env_bool("X", False, {"X": "Yes"}) is True
    assert env_bool("X", True, {"X": "0"}) is False
    assert env_bool("X", True, {}) is True
    with pytest.raises(ConfigError):
        env_bool("X", True, {"X": "2"})


def test_env_int_list_and_url():
    assert env_int("N", 5, {"N": " 7 "}) == 7
    with pytest.raises(ConfigError, match="not a whole number"):
        env_int("N", 5, {"N": "seven"})
    assert env_list("L", ["a"], {"L": "x, y"}) == ["x", "y"]
    assert env_list("L", ["a"], {}) == ["a"]
    assert env_url("U", "redis://h:1/0", ("redis",), {}) == "redis://h:1/0"


def test_a_config_error_is_a_clean_exit():
    error = ConfigError("X is wrong")
    assert isinstance(error, SystemExit)
    assert str(error) == "haven: configuration error: X is wrong"
