"""What telemetry tells the layers beside and above it, on commit (never by importing them)."""

from django.dispatch import Signal

# A chunk of a site's poll of one interval is stored: kwargs site_id, window_start (aware
# datetime), machine_ids (the chunk's), finished (the whole poll of that interval is in).
# Sent once per chunk, after its transaction commits; the alert rules connect here.
windows_recorded = Signal()

# Alerts opened, and alerts resolved, by one evaluation: kwarg alert_ids. Sent after its
# transaction commits, each alert once: an alert two evaluations race to open or resolve is
# in the ids of the one that did it.
alerts_opened = Signal()
alerts_resolved = Signal()
