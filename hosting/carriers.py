"""Carriers a tenant ships machines with, and the public page that tracks a shipment (pure).

Each carrier's tracking page takes the number in its address; the number is the tenant's
text, so it is URL-encoded whole (a `/`, `&` or `#` in it cannot change the address). A
carrier Haven has no page for (freight forwarders, "other") shows the plain number.
"""

from urllib.parse import quote

from django.db import models


class Carrier(models.TextChoices):
    UPS = "ups", "UPS"
    FEDEX = "fedex", "FedEx"
    DHL = "dhl", "DHL Express"
    USPS = "usps", "USPS"
    MAERSK = "maersk", "Maersk (container)"
    OTHER = "other", "Other / freight forwarder"


TRACKING_URLS: dict[str, str] = {
    Carrier.UPS: "https://www.ups.com/track?tracknum={number}",
    Carrier.FEDEX: "https://www.fedex.com/fedextrack/?trknbr={number}",
    Carrier.DHL: "https://www.dhl.com/global-en/home/tracking/tracking-express.html?submit=1&tracking-id={number}",
    Carrier.USPS: "https://tools.usps.com/go/TrackConfirmAction?tLabels={number}",
    Carrier.MAERSK: "https://www.maersk.com/tracking/{number}",
}


def tracking_url(carrier: str, number: str) -> str | None:
    """The carrier's tracking page for `number`, or None (no number, or no page we know)."""
    number = number.strip()
    template = TRACKING_URLS.get(carrier)
    if not number or template is None:
        return None
    return template.format(number=quote(number, safe=""))
