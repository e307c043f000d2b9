"""The world of the billing tests: a month of hourly windows per machine, written through
telemetry's storage, rolled into machine-days by billing's own rollup."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

from hosting.billing import services
from hosting.billing.models import ContractTerms
from hosting.lifecycle import MachineStatus
from hosting.models import Contract, Machine
from hosting.telemetry import storage
from hosting.telemetry.models import Window
from hosting.telemetry.services_store import policy_for
from tests.factories import ReservationFactory, racked
from tests.telemetry.store_world import unknown, window

HOUR = dt.timedelta(hours=1)
WINDOW_S = 3600  # one window an hour: a month is 720 windows a machine, easy to count by hand


def billing_floor(floor, *, tz: str = "UTC", rate: str = "0.05000", **terms) -> Contract:
    """The floor's site in time zone `tz`, its contract at `rate` per kWh from 2026, hourly polls."""
    site = floor["site"]
    site.timezone = tz
    site.save(update_fields=["timezone"])
    contract = floor["contract"]
    hold = ReservationFactory(site=site, it_kw=contract.it_kw, starts_on=dt.date(2026, 1, 1))
    Contract.objects.filter(pk=contract.pk).update(
        rate_usd_per_kwh=Decimal(rate), starts_on=dt.date(2026, 1, 1), ends_on=None, status="active", reservation=hold
    )
    contract.refresh_from_db()
    ContractTerms.objects.update_or_create(contract=contract, defaults=terms)
    policy = policy_for(site)
    policy.poll_interval_s = WINDOW_S
    policy.save(update_fields=["poll_interval_s"])
    return contract


def live(floor, n: int, since: dt.datetime, circuit: int = 0) -> list[Machine]:
    machines = racked(floor, n, circuit=circuit)
    Machine.objects.filter(pk__in=[m.pk for m in machines]).update(status=MachineStatus.LIVE, status_changed_at=since)
    return list(Machine.objects.filter(pk__in=[m.pk for m in machines]).order_by("pk"))


Story = Callable[[int, dt.datetime], dict | None]  # (hour index, start) → window fields, None: unknown


def hours(machine: Machine, start: dt.datetime, end: dt.datetime, story: Story | None = None) -> int:
    """Hourly windows of `machine` from `start` to `end`: by default polled, hashing, 3,250 W
    from the PDU; `story(i, at)` gives other fields for a window, or None for an unknown one."""
    rows: list[Window] = []
    at, i = start, 0
    while at < end:
        fields = story(i, at) if story else {}
        rows.append(unknown(machine, at) if fields is None else window(machine, at, **fields))
        at, i = at + HOUR, i + 1
    return storage.write_windows(rows)


def close(site, until: dt.datetime) -> int:
    """Telemetry has accounted up to `until`; billing rolls the machine-days."""
    policy = policy_for(site)
    policy.filled_until = until
    policy.save(update_fields=["filled_until"])
    return services.roll_up_machine_days(site, now=until + dt.timedelta(days=1))


def local(tz: str, *args) -> dt.datetime:
    import zoneinfo

    return dt.datetime(*args, tzinfo=zoneinfo.ZoneInfo(tz))
