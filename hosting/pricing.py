"""Prices, in Decimal dollars: list rate less a term discount, per kWh of IT load.

Pure functions; the rates and discounts come from SitePricing and TermDiscount rows.
"""

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

HOURS_PER_MONTH = Decimal(730)  # 8,760 h ÷ 12: the hosting industry's billing month
CENT = Decimal("0.01")
RATE_QUANTUM = Decimal("0.00001")


def discount_pct(discounts: Iterable[tuple[int, Decimal]], term_months: int) -> Decimal:
    """The best discount whose minimum term the request meets: (min months, %) pairs."""
    return max((pct for months, pct in discounts if term_months >= months), default=Decimal(0))


def rate_usd_per_kwh(list_rate: Decimal, discount: Decimal) -> Decimal:
    return (list_rate * (100 - discount) / 100).quantize(RATE_QUANTUM, rounding=ROUND_HALF_UP)


def monthly_usd(it_kw: Decimal, rate: Decimal) -> Decimal:
    """A month of running `it_kw` flat out: kW × 730 h × $/kWh."""
    return (it_kw * HOURS_PER_MONTH * rate).quantize(CENT, rounding=ROUND_HALF_UP)


def setup_usd(machines: int, fee_per_machine: Decimal) -> Decimal:
    return (machines * fee_per_machine).quantize(CENT, rounding=ROUND_HALF_UP)
