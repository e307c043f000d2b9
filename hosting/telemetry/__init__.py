"""Fleet telemetry after go-live: polling on site queues, 5-minute windows, rollups, alerts."""
