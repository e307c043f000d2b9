"""Billing's rules: a contract's machine-months and terms in, invoice lines out. Pure: no
database, so every total can be worked out by hand and checked in a test.

Rounding: a line's quantity is rounded first (kWh to 3 places), then quantity × unit price
is rounded half-up to cents once, on the line; totals add rounded lines. A tenant who
multiplies the printed quantity by the printed price gets the printed amount.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cached_property

CENT = Decimal("0.01")
KWH = Decimal("0.001")
PRICE = Decimal("0.000001")
PCT_PLACES = Decimal("0.01")
HOURS_PER_MONTH = Decimal(730)  # the deposit's estimate of a month, as quotes price it

MODES = ("metered", "nameplate", "flat")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _decimal(value, what: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"{what} must be a number, not {value!r}.") from exc
    if not number.is_finite():
        raise ValueError(f"{what} must be a finite number.")
    return number


@dataclass(frozen=True)
class Tier:
    below_pct: Decimal
    credit_pct: Decimal


def parse_tiers(raw) -> list[Tier]:
    """SLA tiers from their JSON: a list of {"below_pct", "credit_pct"}, both 0–100."""
    if not isinstance(raw, list):
        raise ValueError("SLA tiers must be a list of {below_pct, credit_pct}.")
    tiers = []
    for i, item in enumerate(raw, 1):
        if not isinstance(item, dict) or set(item) != {"below_pct", "credit_pct"}:
            raise ValueError(f"Tier {i} must have exactly below_pct and credit_pct.")
        tier = Tier(
            _decimal(item["below_pct"], f"Tier {i} below_pct"), _decimal(item["credit_pct"], f"Tier {i} credit_pct")
        )
        if not (0 <= tier.below_pct <= 100 and 0 <= tier.credit_pct <= 100):
            raise ValueError(f"Tier {i}: percentages must be between 0 and 100.")
        tiers.append(tier)
    return tiers


def credit_pct(uptime_pct: Decimal | None, tiers: Iterable[Tier]) -> Decimal:
    """The credit of the deepest tier the uptime falls below (0 if none, or nothing counted)."""
    if uptime_pct is None:
        return Decimal(0)
    return max((t.credit_pct for t in tiers if uptime_pct < t.below_pct), default=Decimal(0))


@dataclass(frozen=True)
class LevyTier:
    price_up_to: Decimal
    per_kwh: Decimal


def parse_levy_tiers(raw) -> list[LevyTier]:
    if not isinstance(raw, list):
        raise ValueError("Levy tiers must be a list of {price_up_to, per_kwh}.")
    tiers = []
    for i, item in enumerate(raw, 1):
        if not isinstance(item, dict) or set(item) != {"price_up_to", "per_kwh"}:
            raise ValueError(f"Tier {i} must have exactly price_up_to and per_kwh.")
        tier = LevyTier(
            _decimal(item["price_up_to"], f"Tier {i} price_up_to"), _decimal(item["per_kwh"], f"Tier {i} per_kwh")
        )
        if tier.per_kwh < 0 or tier.price_up_to < 0:
            raise ValueError(f"Tier {i}: values must not be negative.")
        tiers.append(tier)
    return sorted(tiers, key=lambda t: t.price_up_to)


def levy_per_kwh(per_kwh: Decimal, tiers: Sequence[LevyTier], power_price: Decimal | None) -> Decimal:
    """The levy's rate: the first tier whose price ceiling is at or above the power price
    paid; the flat rate when there are no tiers, no price, or the price is above them all."""
    if power_price is not None:
        for tier in tiers:
            if power_price <= tier.price_up_to:
                return tier.per_kwh
    return per_kwh


@dataclass(frozen=True)
class Levy:
    name: str
    currency: str
    per_kwh: Decimal  # in the levy's currency, after tiers
    to_billing: Decimal  # billing currency per unit of the levy's


@dataclass(frozen=True)
class Terms:
    mode: str
    rate_per_kwh: Decimal
    sla_target_pct: Decimal
    sla_basis: str = "hashing"
    tiers: tuple[Tier, ...] = ()
    flat_fees: dict[int, Decimal] = field(default_factory=dict)  # machine model id → fee per month
    setup_fee: Decimal = Decimal(0)
    deposit_months: Decimal = Decimal(0)
    max_curtailed_hours_month: int | None = None
    curtailable: bool = True


@dataclass(frozen=True)
class MachineMonth:
    """One machine's period, summed from its machine-days."""

    machine_id: int
    model_id: int
    model_name: str
    nameplate_w: int
    days_live: int
    seconds: int  # every window's length, summed
    seconds_curtailed: int
    seconds_operational: int  # live windows neither curtailed, in maintenance nor RMA
    seconds_unknown: int  # counted windows with no poll
    windows: int
    windows_curtailed: int
    windows_rma: int
    windows_maintenance: int
    windows_unknown: int
    windows_reachable: int
    windows_hashing: int
    energy_wh_measured: float  # answering windows and PDU readings (unreachable at 0 W)
    first_live_in_period: bool = False  # setup fee due on this invoice

    @property
    def unknown_wh(self) -> float:
        """Counted windows no poll saw are billed at nameplate (the best source left)."""
        return self.seconds_unknown * self.nameplate_w / 3600

    @cached_property  # read by the energy line, the levies and the machine's evidence
    def kwh_metered(self) -> Decimal:
        return (Decimal(repr(self.energy_wh_measured)) + Decimal(repr(self.unknown_wh))) / 1000

    @property
    def kwh_nameplate(self) -> Decimal:
        return Decimal(self.seconds_operational) * self.nameplate_w / 3_600_000


@dataclass(frozen=True)
class Uptime:
    """One machine's (or a fleet's) SLA count: up ÷ counted, with what was left out."""

    counted: int = 0
    up: int = 0
    unknown: int = 0
    excluded_curtailed: int = 0
    curtailed_over_rights: int = 0
    excluded_maintenance: int = 0
    excluded_rma: int = 0

    def __add__(self, other: Uptime) -> Uptime:
        return Uptime(*(a + b for a, b in zip(self.astuple(), other.astuple(), strict=True)))

    @staticmethod
    def total(uptimes: Iterable[Uptime]) -> Uptime:
        """The sum of many (a contract's machines): `sum(uptimes, Uptime())` without an
        Uptime made per machine on the way."""
        sums = [0] * 7
        for u in uptimes:
            for i, value in enumerate(u.astuple()):
                sums[i] += value
        return Uptime(*sums)

    def astuple(self) -> tuple[int, ...]:
        return (
            self.counted, self.up, self.unknown, self.excluded_curtailed, self.curtailed_over_rights,
            self.excluded_maintenance, self.excluded_rma,
        )  # fmt: skip

    @property
    def pct(self) -> Decimal | None:
        if not self.counted:
            return None
        return (Decimal(100) * self.up / self.counted).quantize(PCT_PLACES, rounding=ROUND_HALF_UP)


def uptime(m: MachineMonth, terms: Terms) -> Uptime:
    """The SLA's view of a machine's period. Curtailed windows within the contract's rights
    (curtailable, and up to its hours a month) are excluded; beyond them they count as
    down. Maintenance announced with notice and the tenant's RMA are excluded. Unknown
    windows (Haven's monitoring gap) count as up."""
    if not terms.curtailable:
        allowed_s = 0
    elif terms.max_curtailed_hours_month is None:
        allowed_s = m.seconds_curtailed
    else:
        allowed_s = min(m.seconds_curtailed, terms.max_curtailed_hours_month * 3600)
    over = 0
    if m.seconds_curtailed > allowed_s:
        over = round(m.windows_curtailed * (m.seconds_curtailed - allowed_s) / m.seconds_curtailed)
    basis = m.windows_hashing if terms.sla_basis == "hashing" else m.windows_reachable
    counted = m.windows - m.windows_curtailed - m.windows_rma - m.windows_maintenance
    return Uptime(
        counted=counted + over,
        up=basis + m.windows_unknown,
        unknown=m.windows_unknown,
        excluded_curtailed=m.windows_curtailed - over,
        curtailed_over_rights=over,
        excluded_maintenance=m.windows_maintenance,
        excluded_rma=m.windows_rma,
    )


@dataclass(frozen=True)
class Line:
    kind: str
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal
    model_id: int | None = None


def _line(kind: str, description: str, quantity: Decimal, unit: str, price: Decimal, model_id=None) -> Line:
    return Line(kind, description, quantity, unit, price, cents(quantity * price), model_id)


@dataclass
class MachineBill:
    machine: MachineMonth
    uptime: Uptime
    kwh_billed: Decimal
    amount: Decimal = Decimal(0)


@dataclass
class Bill:
    lines: list[Line]
    machines: list[MachineBill]
    uptime: Uptime
    hosting: Decimal
    credit_pct: Decimal
    kwh_metered: Decimal

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))


def days_in(period_start: dt.date) -> int:
    return calendar.monthrange(period_start.year, period_start.month)[1]


def hosting_lines(
    terms: Terms, machines: Sequence[MachineMonth], period_start: dt.date
) -> tuple[list[Line], list[MachineBill]]:
    """Energy or flat-fee lines, one per machine model, and each machine's share."""
    by_model: dict[int, list[MachineMonth]] = {}
    for m in machines:
        by_model.setdefault(m.model_id, []).append(m)
    lines: list[Line] = []
    bills: list[MachineBill] = []
    days = days_in(period_start)
    for model_id, group in sorted(by_model.items(), key=lambda kv: kv[1][0].model_name):
        name = group[0].model_name
        if terms.mode == "flat":
            fee = terms.flat_fees.get(model_id)
            if fee is None:
                raise ValueError(f"The contract has no flat fee for {name}.")
            machine_days = sum(m.days_live for m in group)
            amount = cents(fee * machine_days / days)
            lines.append(Line(
                "flat", f"{name}: {fee}/month × {machine_days} machine-days ÷ {days}", Decimal(machine_days),
                "machine-day", (fee / days).quantize(PRICE, rounding=ROUND_HALF_UP), amount, model_id,
            ))  # fmt: skip
            bills += [MachineBill(m, uptime(m, terms), Decimal(0), cents(fee * m.days_live / days)) for m in group]
            continue
        per_machine = [m.kwh_nameplate if terms.mode == "nameplate" else m.kwh_metered for m in group]
        kwh = sum(per_machine, Decimal(0)).quantize(KWH, rounding=ROUND_HALF_UP)
        how = "nameplate, operational hours" if terms.mode == "nameplate" else "metered"
        lines.append(_line("energy", f"{name}: energy ({how})", kwh, "kWh", terms.rate_per_kwh, model_id))
        bills += [
            MachineBill(m, uptime(m, terms), k.quantize(KWH, rounding=ROUND_HALF_UP), cents(k * terms.rate_per_kwh))
            for m, k in zip(group, per_machine, strict=True)
        ]
    return lines, bills


def bill(
    terms: Terms,
    machines: Sequence[MachineMonth],
    period_start: dt.date,
    *,
    levies: Sequence[Levy] = (),
    sla_uptime: Uptime | None = None,
    sla_hosting: Decimal | None = None,
    deposit: Decimal = Decimal(0),
    deposit_refund: Decimal = Decimal(0),
) -> Bill:
    """A contract's invoice for one month.

    `sla_uptime` / `sla_hosting`: the SLA period's uptime and hosting fees when it is longer
    than this month (a yearly SLA, settled on the year's last invoice); None = this month's,
    and for a yearly SLA on any other month, pass Uptime() (nothing is settled)."""
    lines, bills = hosting_lines(terms, machines, period_start)
    hosting = sum((line.amount for line in lines), Decimal(0))
    setups = sum(1 for m in machines if m.first_live_in_period)
    if setups and terms.setup_fee:
        lines.append(
            _line("setup", "Setup, machines live for the first time", Decimal(setups), "machine", terms.setup_fee)
        )
    measured = sum((m.kwh_metered for m in machines), Decimal(0)).quantize(KWH, rounding=ROUND_HALF_UP)
    for levy in levies:
        price = (levy.per_kwh * levy.to_billing).quantize(PRICE, rounding=ROUND_HALF_UP)
        lines.append(_line(
            "levy", f"{levy.name}: {levy.per_kwh} {levy.currency}/kWh × measured kWh", measured, "kWh", price,
        ))  # fmt: skip
    total_uptime = Uptime.total(b.uptime for b in bills)
    period_uptime = total_uptime if sla_uptime is None else sla_uptime
    base = hosting if sla_hosting is None else sla_hosting
    pct = credit_pct(period_uptime.pct, terms.tiers)
    if pct and base > 0:
        credit = min(cents(base * pct / 100), base)  # never below zero hosting fees
        what = f"SLA credit: uptime {period_uptime.pct} % < {terms.sla_target_pct} % → {pct} % of hosting fees"
        lines.append(Line("sla_credit", what, Decimal(1), "credit", -credit, -credit))
    if deposit:
        lines.append(
            Line(
                "deposit",
                f"Deposit: {terms.deposit_months} months of estimated fees",
                Decimal(1),
                "deposit",
                deposit,
                deposit,
            )
        )
    if deposit_refund:
        lines.append(
            Line(
                "deposit_refund",
                "Deposit returned at the end of the term",
                Decimal(1),
                "deposit",
                -deposit_refund,
                -deposit_refund,
            )
        )
    return Bill(lines, bills, total_uptime, hosting, pct, measured)


def estimated_month(terms: Terms, it_kw: Decimal, machine_count: int) -> Decimal:
    """A month's hosting fees as the deposit estimates them: booked kW × 730 h × rate, or
    the machines × the highest flat fee."""
    if terms.mode == "flat":
        return cents(machine_count * max(terms.flat_fees.values(), default=Decimal(0)))
    return cents(it_kw * HOURS_PER_MONTH * terms.rate_per_kwh)


def deposit_amount(terms: Terms, it_kw: Decimal, machine_count: int) -> Decimal:
    return cents(estimated_month(terms, it_kw, machine_count) * terms.deposit_months)
