"""/metrics for Prometheus: Haven's own state per site, read from the database per scrape.

A custom collector (no process-global counters that would differ between web workers):
each scrape reads the latest finished poll of every site, the watched machines and the
open alerts in a handful of queries. Access: a staff user's API token
(`Authorization: Token …` or `Bearer …`), or a client address in METRICS_ALLOWED_IPS.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from capacity.models import Site
from hosting.models import ApiToken
from hosting.telemetry import reports

METRICS = {
    "live": ("haven_site_live_machines", "Machines telemetry watches (live, in a slot, with an IP)."),
    "reachable": ("haven_site_reachable_machines", "Machines that answered the latest finished poll."),
    "hashrate": ("haven_site_hashrate_ths", "Hashrate at the latest finished poll, TH/s."),
    "power": ("haven_site_measured_power_kw", "Measured IT draw at the latest finished poll, kW."),
    "alerts": ("haven_site_open_alerts", "Alerts open now."),
    "lag": ("haven_site_poll_lag_seconds", "Now minus when the latest poll finished."),
    "written": ("haven_site_poll_windows_written", "Windows the latest finished poll wrote."),
}


class HavenCollector(Collector):
    """Per-site gauges at each scrape."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = timezone.now()
        sites = dict(Site.objects.values_list("pk", "slug"))
        live = reports.live_machines_by_site()
        latest = reports.now_by_site()
        alerts = reports.open_alerts_by_site()
        polls = reports.last_polls()
        families = {key: GaugeMetricFamily(name, doc, labels=["site"]) for key, (name, doc) in METRICS.items()}
        for site_id, slug in sorted(sites.items(), key=lambda kv: kv[1]):
            state = latest.get(site_id, reports.Now())
            families["live"].add_metric([slug], live.get(site_id, 0))
            families["reachable"].add_metric([slug], state.reachable)
            families["hashrate"].add_metric([slug], state.hashrate_ths)
            families["power"].add_metric([slug], state.power_kw)
            families["alerts"].add_metric([slug], alerts.get(site_id, 0))
            finished, written = polls.get(site_id, (None, 0))
            if finished is not None:  # never polled: no lag to report, rather than a made-up one
                families["lag"].add_metric([slug], max(0.0, (now - finished).total_seconds()))
            families["written"].add_metric([slug], written)
        yield from families.values()


def allowed(request: HttpRequest) -> bool:
    """A staff user's live token, or a client address on the allow-list."""
    header = request.headers.get("Authorization", "")
    keyword, _, key = header.partition(" ")
    if keyword in ("Token", "Bearer") and key:
        return (
            ApiToken.objects.live()
            .filter(digest=ApiToken.digest_of(key.strip()), user__is_staff=True, user__is_active=True)
            .exists()
        )
    return request.META.get("REMOTE_ADDR", "") in settings.METRICS_ALLOWED_IPS


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not allowed(request):
        return HttpResponse("Forbidden: a staff token or an allowed address.\n", status=403, content_type="text/plain")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HavenCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
