"""The world of the curtailment pages' tests: rows written directly (as the signal and
acting sides would leave them), never through their code."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from hosting.billing.models import ContractTerms, MachineDay
from hosting.curtailment.models import (
    Command,
    Event,
    EventMachine,
    EventSample,
    EventStatus,
    Program,
    ProgramKind,
    SettlementPrice,
    SiteGrid,
)
from hosting.models import Machine
from tests.factories import ContractFactory, MachineFactory, MembershipFactory, PhaseFactory
from tests.telemetry.views_data import live, write_day

MINUTE = dt.timedelta(minutes=1)


def recent() -> dt.datetime:
    now = timezone.now()
    return now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)


def priced_site(site, *, price: str = "250.00", strike: str = "100.00", point: str = "LZ_WEST") -> Program:
    """The site buys at `point`, whose latest price is `price` (an older one at 20.00), and
    takes part in a price program with `strike`."""
    SiteGrid.objects.update_or_create(site=site, defaults={"settlement_point": point})
    at = recent()
    SettlementPrice.objects.create(settlement_point=point, interval_start=at - 30 * MINUTE, price_usd_per_mwh="20.00")
    SettlementPrice.objects.create(settlement_point=point, interval_start=at - 15 * MINUTE, price_usd_per_mwh=price)
    return Program.objects.create(site=site, kind=ProgramKind.PRICE, name=f"Strike {strike}",
                                  strike_usd_per_mwh=Decimal(strike))  # fmt: skip


def event_world(floor, *, machines: int = 4) -> dict:
    """At the floor's site: `machines` live S19s of tenant A (polled for the last hour),
    curtailable (priority 1, 10 h a month, nameplate billing), and one machine of tenant B
    at the same site; an active event shedding 0.012 MW with every machine chosen: A's
    first machine failed (two stop commands without an answer), B's still drawing, the rest
    verified off; a timeline of ten samples ramping to the target."""
    site = floor["site"]
    PhaseFactory(site=site, mw=Decimal("10"), energized_on=dt.date(2021, 1, 1))
    program = priced_site(site)
    mine = live(floor, machines)
    write_day(mine, end=recent(), count=12)
    contract = floor["contract"]
    ContractTerms.objects.update_or_create(
        contract=contract,
        defaults={"curtailment_priority": 1, "max_curtailed_hours_month": 10, "billing_mode": "nameplate"},
    )
    other = ContractFactory(site=site)
    ContractTerms.objects.create(contract=other, curtailment_priority=2)
    theirs = MachineFactory(contract=other, serial="THEIRS-0001")
    start = recent() - 20 * MINUTE
    event = Event.objects.create(
        site=site, program=program, source=Event.Source.PRICE, target=Event.Target.SHED, target_mw=Decimal("0.012"),
        starts_at=start, deadline_at=start + 10 * MINUTE, status=EventStatus.ACTIVE, planned_mw=Decimal("0.0163"),
    )  # fmt: skip
    rows = []
    for rank, m in enumerate([*mine, theirs], 1):
        status = "verified"
        if m == mine[0]:
            status = "failed"
        elif m == theirs:
            status = "still_drawing"
        rows.append(
            EventMachine(
                event=event, machine=m, contract_id=m.contract_id, rank=rank, j_per_th=34.2 - rank / 10,
                expected_shed_w=3100, status=status, attempts=2 if status == "failed" else 1,
                power_before_w=3250.0, power_after_w=None if status == "failed" else (3200.0 if m == theirs else 40.0),
                sent_at=start,
            )
        )  # fmt: skip
    EventMachine.objects.bulk_create(rows)
    failed = EventMachine.objects.get(event=event, machine=mine[0])
    for n in range(2):
        Command.objects.create(event_machine=failed, command="stop_mining", sent_at=start + n * MINUTE, ok=None,
                               answer="timeout after 5 s")  # fmt: skip
    EventSample.objects.bulk_create(
        EventSample(event=event, at=start + i * MINUTE, target_mw=Decimal("0.012"),
                    achieved_mw=Decimal(min(i, 6)) * Decimal("0.0021"), machines_off=min(i, 6) // 2)
        for i in range(10)
    )  # fmt: skip
    user = MembershipFactory(tenant=contract.tenant).user
    other_user = MembershipFactory(tenant=other.tenant).user
    return {
        **floor, "event": event, "mine": mine, "theirs": theirs, "other": other, "user": user,
        "other_user": other_user, "program": program,
    }  # fmt: skip


def curtailed_days(machine: Machine, first: dt.date, hours: list[int], *, window_s: int = 3600) -> None:
    """Machine-days from `first`: day i has hours[i] × 3600 s of curtailed windows."""
    for i, h in enumerate(hours):
        n = h * 3600 // window_s
        MachineDay.objects.create(
            day=first + dt.timedelta(days=i), machine_id=machine.pk, contract_id=machine.contract_id,
            site_id=machine.contract.site_id, window_s=window_s, windows=86_400 // window_s, windows_curtailed=n,
        )  # fmt: skip
