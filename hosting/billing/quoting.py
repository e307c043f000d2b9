"""What billing adds to a quote's options: the site's billing currency, the levies in force
on the day the option starts, and an all-in monthly estimate (hosting fee + levies).

Read when a quote is shown (the API, the portal), not stored in the quote: the hosting core
prices options and must not know billing (tests/test_layers.py); a levy is the
jurisdiction's, so a quote shows the rule in force, worked out as an invoice would work
it out (rules.levy_per_kwh for the tier, the rate converted and rounded to 6 places, each
levy rounded half-up to cents on the estimated kWh).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal

from hosting.billing import rules
from hosting.billing.models import Levy, SiteBilling

KWH_PLACES = Decimal("0.001")
DEFAULT_CURRENCY = SiteBilling._meta.get_field("currency").default


def plain(value: Decimal) -> str:
    """A rate without its trailing zeros, never in exponent form: 1.00000 → "1", 10 → "10"."""
    return format(value.normalize(), "f")


def levy_json(levy: Levy, day: dt.date, kwh_month: Decimal) -> dict:
    """One levy as a quote shows it: its rule, its rate on `day`, a month of it."""
    tiers = rules.parse_levy_tiers(levy.tiers)
    per_kwh = rules.levy_per_kwh(levy.per_kwh, tiers, levy.power_price_per_kwh)
    per_kwh_billing = (per_kwh * levy.to_billing_currency).quantize(rules.PRICE, rounding=ROUND_HALF_UP)
    return {
        "name": levy.name,
        "currency": levy.currency,
        "per_kwh": plain(per_kwh),
        "per_kwh_billing": str(per_kwh_billing),
        "to_billing_currency": str(levy.to_billing_currency),
        "rule": {
            "per_kwh": plain(levy.per_kwh),
            "power_price_per_kwh": None if levy.power_price_per_kwh is None else plain(levy.power_price_per_kwh),
            "tiers": [{"price_up_to": plain(t.price_up_to), "per_kwh": plain(t.per_kwh)} for t in tiers],
        },
        "effective_from": levy.effective_from.isoformat(),
        "effective_until": levy.effective_until.isoformat() if levy.effective_until else None,
        "monthly": str(rules.cents(kwh_month * per_kwh_billing)),
    }


def estimated_kwh_month(it_kw: Decimal) -> Decimal:
    """The month a quote prices: the IT kW flat out for 730 h (as monthly_usd)."""
    return (it_kw * rules.HOURS_PER_MONTH).quantize(KWH_PLACES, rounding=ROUND_HALF_UP)


def with_levies(options: Sequence[dict], it_kw: Decimal) -> list[dict]:
    """Each stored option (quotes.Option.as_json) with its site's billing currency, the
    levies in force on its `available_from`, their monthly sum and the all-in estimate.
    Two queries, whatever the number of options."""
    slugs = {o["site"] for o in options}
    if not slugs:
        return []
    currencies = dict(SiteBilling.objects.filter(site__slug__in=slugs).values_list("site__slug", "currency"))
    levies: dict[str, list[Levy]] = {}
    for levy in Levy.objects.filter(site__slug__in=slugs).select_related("site").order_by("effective_from", "pk"):
        levies.setdefault(levy.site.slug, []).append(levy)
    kwh = estimated_kwh_month(Decimal(it_kw))
    return [_option(o, currencies, levies.get(o["site"], ()), kwh) for o in options]


def _option(option: dict, currencies: dict[str, str], levies: Iterable[Levy], kwh: Decimal) -> dict:
    day = dt.date.fromisoformat(option["available_from"])
    shown = [levy_json(levy, day, kwh) for levy in levies if levy.applies_on(day)]
    levies_monthly = sum((Decimal(levy["monthly"]) for levy in shown), Decimal(0))
    return {
        **option,
        "billing_currency": currencies.get(option["site"], DEFAULT_CURRENCY),
        "estimated_kwh_month": str(kwh),
        "levies": shown,
        "levies_monthly": str(rules.cents(levies_monthly)),
        "all_in_monthly": str(rules.cents(Decimal(option["monthly_usd"]) + levies_monthly)),
    }
