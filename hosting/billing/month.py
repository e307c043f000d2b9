"""What a month's invoices are computed from, read for many contracts of one site at once:
their terms and flat fees, their machines' months (from machine-days), setup fees already
billed, deposits held, the site's levies and currency, and — in December, for yearly SLAs —
the year so far. A fixed number of queries whatever the number of contracts, so the run's
time grows with machine-days, not with queries per contract; `bill(contract)` is then pure.

One contract (staff re-running a draft) and the monthly run for a whole site go through the
same code: `MonthBook.load(site, period_start, [contract])`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.db.models import Count, F, IntegerField, Q, Sum

from capacity.models import Site
from hosting.billing import rules
from hosting.billing.models import (
    ContractTerms,
    FlatFee,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceMachine,
    InvoiceStatus,
    Levy,
    LineKind,
    MachineDay,
    SetupCharge,
    SiteBilling,
    SlaPeriod,
)
from hosting.lifecycle import ContractStatus
from hosting.models import Contract, Machine, MachineModel, SitePricing


def month_of(day: dt.date) -> tuple[dt.date, dt.date]:
    first = day.replace(day=1)
    return first, first + relativedelta(months=1)


def setup_fee(terms: ContractTerms, site_default: Decimal) -> Decimal:
    return terms.setup_fee_per_machine if terms.setup_fee_per_machine is not None else site_default


def rules_terms(
    terms: ContractTerms, contract: Contract, flat_fees: dict[int, Decimal], site_setup_fee: Decimal
) -> rules.Terms:
    return rules.Terms(
        mode=terms.billing_mode,
        rate_per_kwh=contract.rate_usd_per_kwh,
        sla_target_pct=terms.sla_target_pct,
        sla_basis=terms.sla_basis,
        tiers=tuple(rules.parse_tiers(terms.sla_tiers)),
        flat_fees=flat_fees,
        setup_fee=setup_fee(terms, site_setup_fee),
        deposit_months=terms.deposit_months,
        max_curtailed_hours_month=terms.max_curtailed_hours_month,
        curtailable=terms.curtailable,
    )


def levies_in_force(levies: Sequence[Levy], day: dt.date) -> list[rules.Levy]:
    """The levies in force on `day`, their tier picked by the power price."""
    out = []
    for levy in levies:
        if levy.applies_on(day):
            rate = rules.levy_per_kwh(levy.per_kwh, rules.parse_levy_tiers(levy.tiers), levy.power_price_per_kwh)
            out.append(rules.Levy(levy.name, levy.currency, rate, levy.to_billing_currency))
    return out


def terms_of(contract_ids: Sequence[int]) -> dict[int, ContractTerms]:
    """Each contract's terms, the missing ones created with defaults (two queries, three
    when some are missing)."""
    found = {t.contract_id: t for t in ContractTerms.objects.filter(contract_id__in=contract_ids)}
    missing = [pk for pk in contract_ids if pk not in found]
    if missing:
        ContractTerms.objects.bulk_create([ContractTerms(contract_id=pk) for pk in missing], ignore_conflicts=True)
        found |= {t.contract_id: t for t in ContractTerms.objects.filter(contract_id__in=missing)}
    return found


def _seconds(column: str):
    return Sum(F(column) * F("window_s"), output_field=IntegerField())


class MonthBook:
    def __init__(self, site: Site, period_start: dt.date):
        self.site = site
        self.period_start = period_start.replace(day=1)
        self.period_end = month_of(self.period_start)[1]
        self.terms: dict[int, rules.Terms] = {}
        self.terms_rows: dict[int, ContractTerms] = {}
        self.months: dict[int, list[rules.MachineMonth]] = defaultdict(list)
        self.deposit_lines: dict[int, dict[str, Decimal]] = defaultdict(dict)
        self.invoiced_before: set[int] = set()
        self.year_uptime: dict[int, rules.Uptime] = {}
        self.year_hosting: dict[int, Decimal] = {}
        self.levies: list[rules.Levy] = []
        self.currency = "USD"

    @classmethod
    def load(cls, site: Site, period_start: dt.date, contracts: Sequence[Contract]) -> MonthBook:
        book = cls(site, period_start)
        ids = [c.pk for c in contracts]
        book.currency = SiteBilling.objects.get_or_create(site=site)[0].currency
        pricing = SitePricing.objects.filter(site=site).values_list("setup_usd_per_machine", flat=True).first()
        site_setup = pricing if pricing is not None else Decimal(0)
        book.terms_rows = terms_of(ids)
        fees: dict[int, dict[int, Decimal]] = defaultdict(dict)
        for fee in FlatFee.objects.filter(terms__contract_id__in=ids).values("terms__contract_id", "machine_model_id",
                                                                             "fee_per_month"):  # fmt: skip
            fees[fee["terms__contract_id"]][fee["machine_model_id"]] = fee["fee_per_month"]
        for c in contracts:
            book.terms[c.pk] = rules_terms(book.terms_rows[c.pk], c, fees[c.pk], site_setup)
        book.levies = levies_in_force(list(Levy.objects.filter(site=site).order_by("effective_from", "pk")),
                                      book.period_start)  # fmt: skip
        book._load_machines(ids)
        book._load_history(ids)
        return book

    def _load_machines(self, ids: list[int]) -> None:
        """The contracts' machines' months: machine-days grouped by contract and machine
        (one query), their models (one query over the contracts' machines, one of the catalog)."""
        rows = (
            MachineDay.objects.filter(contract_id__in=ids, day__gte=self.period_start, day__lt=self.period_end)
            .order_by()
            .values("contract_id", "machine_id")
            .annotate(
                days_live=Count("pk", filter=Q(windows__gt=F("windows_rma"))),
                seconds=_seconds("windows"), seconds_curtailed=_seconds("windows_curtailed"),
                seconds_rma=_seconds("windows_rma"), seconds_maintenance=_seconds("windows_maintenance"),
                seconds_unknown=_seconds("windows_unknown"),
                n=Sum("windows"), n_curtailed=Sum("windows_curtailed"), n_rma=Sum("windows_rma"),
                n_maintenance=Sum("windows_maintenance"), n_unknown=Sum("windows_unknown"),
                n_reachable=Sum("windows_reachable"), n_hashing=Sum("windows_hashing"),
                wh=Sum(F("energy_wh_pdu") + F("energy_wh_miner") + F("energy_wh_nameplate")),
            )
            .values_list(
                "contract_id", "machine_id", "days_live", "seconds", "seconds_curtailed", "seconds_rma",
                "seconds_maintenance", "seconds_unknown", "n", "n_curtailed", "n_rma", "n_maintenance", "n_unknown",
                "n_reachable", "n_hashing", "wh",
            )
        )  # fmt: skip
        model_of = dict(Machine.objects.filter(contract_id__in=ids).values_list("pk", "model_id"))
        catalog = {m.pk: m for m in MachineModel.objects.all()}
        billed_setup = set(
            SetupCharge.objects.filter(machine__contract_id__in=ids)
            .exclude(invoice__period_start=self.period_start, invoice__kind=InvoiceKind.INVOICE)
            .values_list("machine_id", flat=True)
        )
        for c_id, m_id, days, s, s_cur, s_rma, s_mnt, s_unk, n, n_cur, n_rma, n_mnt, n_unk, n_rch, n_hsh, wh in sorted(
            rows, key=lambda r: (r[0], r[1])
        ):
            model = catalog[model_of.get(m_id) or 0] if m_id in model_of else None
            if model is None:
                continue
            self.months[c_id].append(rules.MachineMonth(
                machine_id=m_id, model_id=model.pk, model_name=model.name, nameplate_w=model.nameplate_power_w,
                days_live=days, seconds=s, seconds_curtailed=s_cur, seconds_operational=s - s_cur - s_rma - s_mnt,
                seconds_unknown=s_unk, windows=n, windows_curtailed=n_cur, windows_rma=n_rma,
                windows_maintenance=n_mnt, windows_unknown=n_unk, windows_reachable=n_rch, windows_hashing=n_hsh,
                energy_wh_measured=wh or 0.0, first_live_in_period=days > 0 and m_id not in billed_setup,
            ))  # fmt: skip

    def _load_history(self, ids: list[int]) -> None:
        """Deposits held (lines of earlier final invoices), whether a contract was invoiced
        before, and for yearly SLAs settled in December the year so far."""
        finals = (
            Invoice.objects.filter(contract_id__in=ids, kind=InvoiceKind.INVOICE)
            .exclude(status__in=[InvoiceStatus.DRAFT, InvoiceStatus.VOID])
            .exclude(period_start=self.period_start)
        )
        self.invoiced_before = set(finals.values_list("contract_id", flat=True).distinct())
        held = (
            InvoiceLine.objects.filter(invoice__in=finals, kind__in=[LineKind.DEPOSIT, LineKind.DEPOSIT_REFUND])
            .values("invoice__contract_id", "kind")
            .annotate(total=Sum("amount"))
        )
        for line in held:
            self.deposit_lines[line["invoice__contract_id"]][line["kind"]] = line["total"]
        yearly = [pk for pk in ids if self.terms_rows[pk].sla_period == SlaPeriod.YEAR]
        if self.period_start.month != 12 or not yearly:
            return
        year = finals.filter(contract_id__in=yearly, period_start__year=self.period_start.year)
        counts = (
            InvoiceMachine.objects.filter(invoice__in=year)
            .values("invoice__contract_id")
            .annotate(counted=Sum("windows_counted"), up=Sum("windows_up"), unknown=Sum("windows_unknown"))
        )
        for c in counts:
            self.year_uptime[c["invoice__contract_id"]] = rules.Uptime(
                counted=c["counted"] or 0, up=c["up"] or 0, unknown=c["unknown"] or 0
            )
        for h in year.values("contract_id").annotate(total=Sum("hosting_amount")):
            self.year_hosting[h["contract_id"]] = h["total"] or Decimal(0)

    def deposits(self, contract: Contract) -> tuple[Decimal, Decimal]:
        """(deposit to invoice now, deposit to return now). The deposit goes on the
        contract's first invoice; it is returned on the invoice of the term's last day (or
        once the contract has ended)."""
        terms = self.terms[contract.pk]
        held = self.deposit_lines.get(contract.pk, {})
        invoiced = held.get(LineKind.DEPOSIT, Decimal(0))
        returned = -held.get(LineKind.DEPOSIT_REFUND, Decimal(0))
        deposit = Decimal(0)
        if not invoiced and contract.pk not in self.invoiced_before:
            deposit = rules.deposit_amount(terms, contract.it_kw, contract.machine_count)
        last_day = contract.ends_on - dt.timedelta(days=1) if contract.ends_on else None
        ending = (last_day is not None and last_day < self.period_end) or contract.status == ContractStatus.ENDED
        refund = invoiced + deposit - returned if ending else Decimal(0)
        return deposit, max(refund, Decimal(0))

    def bill(self, contract: Contract) -> tuple[rules.Bill, list[rules.MachineMonth]]:
        """The contract's bill for the month (pure, from what was loaded)."""
        terms = self.terms[contract.pk]
        months = self.months.get(contract.pk, [])
        deposit, refund = self.deposits(contract)
        kwargs: dict = {"levies": self.levies, "deposit": deposit, "deposit_refund": refund}
        if self.terms_rows[contract.pk].sla_period == SlaPeriod.YEAR:
            month = rules.bill(terms, months, self.period_start, sla_uptime=rules.Uptime())
            if self.period_start.month == 12:  # settled over the year: the months before and this one
                kwargs["sla_uptime"] = self.year_uptime.get(contract.pk, rules.Uptime()) + month.uptime
                kwargs["sla_hosting"] = self.year_hosting.get(contract.pk, Decimal(0)) + month.hosting
            else:
                kwargs["sla_uptime"] = rules.Uptime()
        return rules.bill(terms, months, self.period_start, **kwargs), months
