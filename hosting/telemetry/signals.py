"""Telemetry's signals, sent on commit so that receivers read what was stored."""

from django.dispatch import Signal

# A site's poll of one interval is stored (windows and circuit windows).
# kwargs: site_id (int), window_start (datetime).
windows_recorded = Signal()
