"""The layers of ARCHITECTURE.md, read from the source: each package imports only those
below it — `changelog` ← `capacity` ← `hosting` core ← commissioning (and the operating apps) ← the faces.
Imports inside functions count too: a late import is still an upward dependency."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The faces and the project's wiring may import anything.
TOP = {"hosting.api", "hosting.portal", "hosting.staff", "hosting.admin", "hosting.urls", "hosting.management"}
TOP |= {"hosting.demo", "hosting.benchmark", "hosting.settings", "hosting.celery", "hosting.wsgi", "hosting.asgi"}
TOP |= {"hosting.apps", "hosting.migrations"}
FEATURES = {"hosting.commissioning", "hosting.telemetry"}  # siblings on the core, under the faces
# On telemetry, under the faces: billing reads windows and contract terms (ARCHITECTURE.md).
OPERATING = {"hosting.billing", "hosting.curtailment"}
# Listens to everything (signals on commit), so above billing and curtailment, under the faces.
LISTENERS = {"hosting.webhooks"}
FACES = {"hosting.api", "hosting.portal", "hosting.staff", "hosting.admin"}
# The telemetry app keeps its faces beside its rules (ARCHITECTURE.md: api.py in each app).
TELEMETRY_FACES = {"hosting.telemetry.api", "hosting.telemetry.api_alerts", "hosting.telemetry.admin"}
APP_FACES = TELEMETRY_FACES | {"hosting.billing.api", "hosting.billing.admin", "hosting.billing.documents"}
APP_FACES |= {"hosting.curtailment.api", "hosting.webhooks.api", "hosting.webhooks.admin"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def under(name: str, packages: set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def sources(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("path", sources("changelog"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_change_log_is_under_both(path):
    """The change log's helpers are imported by the ledger and the services alike: it knows
    neither (its models are registered in settings, its faces live in hosting)."""
    assert not {i for i in imports(path) if under(i, {"capacity", "hosting"})}


@pytest.mark.parametrize("path", sources("capacity"), ids=lambda p: str(p.relative_to(ROOT)))
def test_capacity_knows_nothing_of_hosting(path):
    assert not {i for i in imports(path) if under(i, {"hosting"})}


def core_modules() -> list[Path]:
    # hosting/__init__.py loads the Celery app: the project's wiring, not the core.
    return [
        p for p in sources("hosting")
        if module_name(p) != "hosting" and not under(module_name(p), TOP | FEATURES | OPERATING | LISTENERS)
    ]  # fmt: skip


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_hosting_core_never_imports_upward(path):
    upward = {i for i in imports(path) if under(i, TOP | FEATURES | OPERATING | LISTENERS)}
    assert not upward, f"{module_name(path)} imports {sorted(upward)}: react to a signal instead"


def feature_modules(packages: set[str] = FEATURES) -> list[Path]:
    return [p for feature in sorted(packages) for p in sources(feature.replace(".", "/")) if p.parent.exists()]


def feature_rules() -> list[Path]:
    """Feature and operating modules but the faces an app keeps beside its rules (its api, its admin)."""
    return [p for p in feature_modules(FEATURES | OPERATING | LISTENERS) if not under(module_name(p), APP_FACES)]


@pytest.mark.parametrize("path", feature_rules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_features_never_import_the_faces(path):
    assert not {i for i in imports(path) if under(i, FACES)}


@pytest.mark.parametrize("path", feature_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_telemetry_and_commissioning_never_import_billing_or_curtailment(path):
    """Billing reads windows; telemetry never asks billing (a reaction goes through a signal)."""
    assert not {i for i in imports(path) if under(i, OPERATING)}


@pytest.mark.parametrize("path", feature_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_sibling_features_never_import_each_other(path):
    """Telemetry polls with the core's probes, never commissioning's code (nor the reverse):
    what both need lives in the core (hosting.probes, hosting.readings, hosting.queues)."""
    mine = next(f for f in FEATURES if under(module_name(path), {f}))
    siblings = FEATURES - {mine}
    crossing = {i for i in imports(path) if under(i, siblings)}
    assert not crossing, f"{module_name(path)} imports {sorted(crossing)}"


@pytest.mark.parametrize("path", feature_modules(FEATURES | OPERATING), ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_below_the_faces_imports_webhooks(path):
    """Webhooks listen to the signals the layers below send; none of them knows it is there."""
    assert not {i for i in imports(path) if under(i, LISTENERS)}


def test_the_layer_check_sees_a_telemetry_module_importing_commissioning(tmp_path):
    """The check above is not vacuous: such an import is found, late imports included."""
    source = tmp_path / "poller.py"
    source.write_text("def f():\n    from hosting.commissioning.probes import MinerProbe\n")
    assert {i for i in imports(source) if under(i, {"hosting.commissioning"})}
    assert any(module_name(p).startswith("hosting.telemetry.") for p in feature_modules())
