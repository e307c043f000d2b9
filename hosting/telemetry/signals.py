"""What telemetry tells the layers beside and above it, on commit (never by importing them)."""

from django.dispatch import Signal

# A chunk of a site's poll of one interval is stored: kwargs site_id, window_start (aware
# datetime), machine_ids (the chunk's), finished (the whole poll of that interval is in).
# Sent once per chunk, after its transaction commits; the alert rules connect here.
windows_recorded = Signal()
