"""From stored windows to alerts and mail, as in production: windows written through the one
write path and committed, `windows_recorded` sent on commit (as the poll does), the receiver
evaluates; the digest runs in a real Celery worker and mails each recipient once."""

import pytest
from django.db import transaction

from hosting.telemetry import storage
from hosting.telemetry.models import Alert, AlertKind, CircuitWindow, Window
from hosting.telemetry.signals import windows_recorded
from hosting.telemetry.tasks_alerts import send_alert_digests
from tests.telemetry.alert_world import DOWN, at, live, window
from tests.workers import celery_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def poll_stored(site_id, i, machines, circuit=None, measured_w=None, **fields) -> None:
    """What a poll does once it has its readings (hosting.telemetry.services.record_poll):
    write, commit, tell the listeners — here the whole interval in one chunk."""
    with transaction.atomic():
        storage.write_windows([window(m, at(i), **fields) for m in machines])
        if circuit is not None:
            storage.write_circuit_windows(
                [CircuitWindow(start=at(i), circuit=circuit, site_id=site_id, measured_w=measured_w)]
            )
        ids = [m.pk for m in machines]
        transaction.on_commit(
            lambda: windows_recorded.send(
                sender=Window, site_id=site_id, window_start=at(i), machine_ids=ids, finished=True
            )
        )


def test_windows_over_n_intervals_open_an_offline_alert_once_and_a_reachable_window_resolves_it(floor, site_policy):
    site = floor["site"]
    (machine,) = live(floor, 1)
    for i in range(5):  # offline after the third window, still offline for two more
        poll_stored(site.pk, i, [machine], **DOWN)
        assert Alert.objects.filter(machine=machine).count() == (1 if i >= 2 else 0), i
    alert = Alert.objects.get(machine=machine)
    assert alert.kind == AlertKind.OFFLINE
    assert alert.resolved_at is None
    assert alert.tenant == machine.tenant
    assert alert.values["windows"] == 3  # what the rule saw when it opened
    assert alert.last_seen_at > alert.opened_at

    poll_stored(site.pk, 5, [machine])  # it answers
    alert.refresh_from_db()
    assert alert.resolved_at is not None
    assert Alert.objects.count() == 1


def test_a_chunk_not_last_leaves_the_circuits_to_the_end_of_the_poll(floor, site_policy):
    site = floor["site"]
    circuit = floor["circuits"][0]
    machines = live(floor, 2)
    with transaction.atomic():
        storage.write_windows([window(m, at(0), fans_ok=False) for m in machines])
        storage.write_circuit_windows([CircuitWindow(start=at(0), circuit=circuit, site_id=site.pk, measured_w=6e4)])
        transaction.on_commit(
            lambda: windows_recorded.send(
                sender=Window, site_id=site.pk, window_start=at(0), machine_ids=[machines[0].pk], finished=False
            )
        )
    assert set(Alert.objects.values_list("machine", "kind")) == {(machines[0].pk, AlertKind.FANS_STOPPED)}


def test_a_circuit_over_80_percent_opens_a_circuit_alert(floor, site_policy):
    site = floor["site"]
    circuit = floor["circuits"][0]  # 68,286 W rated: 80 % is 54,628 W
    machines = live(floor, 2)
    poll_stored(site.pk, 0, machines, circuit=circuit, measured_w=54_000.0)
    assert not Alert.objects.exists()
    poll_stored(site.pk, 1, machines, circuit=circuit, measured_w=55_500.0)
    alert = Alert.objects.get()
    assert (alert.circuit, alert.kind, alert.tenant) == (circuit, AlertKind.CIRCUIT_HOT, None)
    assert alert.values["measured_pct"] == 81.3


def test_the_digest_runs_in_a_real_worker_and_a_second_run_mails_nothing_new(floor, site_policy, tmp_path):
    site = floor["site"]
    machines = live(floor, 2)
    for i in range(3):
        poll_stored(site.pk, i, machines, fans_ok=False)
    assert Alert.objects.open().count() == 2
    outbox = tmp_path / "mail"
    env = {"EMAIL_FILE_PATH": str(outbox), "ALERT_EMAILS": "noc@haven.example"}

    def mails() -> list[str]:
        """Each message the worker wrote (the file backend appends a session's to one file)."""
        files = sorted(outbox.glob("*")) if outbox.exists() else []
        text = "".join(p.read_text() for p in files)
        return [m for m in text.split("-" * 79) if m.strip()]

    with celery_worker(extra_env=env, purge_first=True) as worker:
        send_alert_digests.delay()
        try:
            wait_for(lambda: len(mails()) == 2, what="two mails")  # staff and the tenant
        except AssertionError:
            raise AssertionError(worker.output()) from None
        assert not Alert.objects.filter(notified_at__isnull=True).exists()
        first = set(Alert.objects.values_list("notified_at", flat=True))
        send_alert_digests.delay()  # twice more, as beat and a retry might
        send_alert_digests.delay()

        def runs_done() -> int:
            lines = worker.output().splitlines()
            return sum("telemetry.send_alert_digests[" in line and "succeeded" in line for line in lines)

        wait_for(lambda: runs_done() >= 3, what="three digest runs")
    texts = mails()
    assert len(texts) == 2
    assert any("To: noc@haven.example" in t for t in texts)
    assert any(f"To: {machines[0].tenant.contact_email}" in t for t in texts)
    assert all(t.count("[opened]") == 2 for t in texts)
    assert set(Alert.objects.values_list("notified_at", flat=True)) == first
