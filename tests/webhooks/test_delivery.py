"""Deliveries to a real HTTP receiver in the test process: signed and verified with the
shipped `verify`, retried with backoff after a 500, given up on and the subscription disabled
after repeated failures, re-enabled, replayed; never sent to a private or loopback address
with production settings; no redirect followed; a tenant's subscription gets only its own
tenant's events."""

import datetime as dt

import pytest

from hosting.webhooks import services
from hosting.webhooks.models import Attempt, Delivery, EventType, Subscription
from hosting.webhooks.services import Entry
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC)


def subscribed(receiver, tenant=None, events=(EventType.INVOICE_ISSUED,)) -> Subscription:
    subscription = services.subscribe(tenant=tenant, url=receiver.url, events=list(events))
    receiver.secret = subscription.secret
    return subscription


def happened(django_capture_on_commit_callbacks, tenant, type=EventType.INVOICE_ISSUED, **data):
    with django_capture_on_commit_callbacks(execute=True):
        return services.record(type, [Entry(tenant_id=tenant.pk if tenant else None, data=data or {"n": 1})], now=T0)


def test_a_delivery_is_signed_and_the_receiver_verifies_it(receiver, published, django_capture_on_commit_callbacks):
    tenant = TenantFactory()
    subscription = subscribed(receiver, tenant)
    (event,) = happened(django_capture_on_commit_callbacks, tenant, number="TX-2026-I00001")
    (delivery,) = Delivery.objects.filter(subscription=subscription)
    assert published == [delivery.pk]  # sent to the broker once the event committed

    done = services.attempt(delivery.pk, now=T0)

    (got,) = receiver.received
    assert got.verified, got.why
    assert got.path == "/hooks/haven"
    assert got.headers["haven-event-id"] == str(event.pk)
    assert got.headers["haven-event-type"] == "invoice.issued"
    assert got.headers["content-type"] == "application/json"
    body = got.json
    assert (body["id"], body["type"], body["created_at"]) == (str(event.pk), "invoice.issued", T0.isoformat())
    assert body["data"] == {"number": "TX-2026-I00001"}
    assert done is not None
    assert (done.status, done.attempts, done.response_status) == (Delivery.Status.DELIVERED, 1, 200)
    (attempt,) = Attempt.objects.filter(delivery=delivery)
    assert (attempt.number, attempt.response_status, attempt.error) == (1, 200, "")
    assert attempt.duration_ms == done.duration_ms
    assert attempt.response_excerpt == '{"ok": true}'
    assert services.attempt(delivery.pk, now=T0) is None  # delivered: a second task sends nothing
    assert len(receiver.received) == 1


def test_a_signature_from_another_secret_is_refused_by_the_receiver(
    receiver, published, django_capture_on_commit_callbacks
):
    tenant = TenantFactory()
    subscription = subscribed(receiver, tenant)
    receiver.secret = "whsec_not-the-one"
    happened(django_capture_on_commit_callbacks, tenant)
    done = services.attempt(Delivery.objects.get(subscription=subscription).pk, now=T0)
    assert receiver.received[0].why == "the signature does not match the body"
    assert done is not None
    assert (done.status, done.response_status) == (Delivery.Status.PENDING, 401)


def test_a_500_is_retried_after_a_backoff_and_then_delivered(receiver, published, django_capture_on_commit_callbacks):
    tenant = TenantFactory()
    subscription = subscribed(receiver, tenant)
    happened(django_capture_on_commit_callbacks, tenant)
    delivery = Delivery.objects.get(subscription=subscription)
    receiver.answer(500)

    first = services.attempt(delivery.pk, now=T0)
    assert first is not None
    assert (first.status, first.attempts, first.response_status, first.error) == ("pending", 1, 500, "answered 500")
    # 60 s, less up to 25 % jitter
    assert T0 + dt.timedelta(seconds=45) <= first.next_attempt_at <= T0 + dt.timedelta(seconds=60)
    assert services.attempt(delivery.pk, now=T0 + dt.timedelta(seconds=30)) is None  # not yet due
    assert published[-1] == delivery.pk  # a retry this soon waits in the broker (with a countdown)

    second = services.attempt(delivery.pk, now=first.next_attempt_at)
    assert second is not None
    assert (second.status, second.attempts, second.response_status) == ("delivered", 2, 200)
    assert [r.verified for r in receiver.received] == [True, True]
    assert len({r.headers["haven-event-id"] for r in receiver.received}) == 1  # the same event, twice
    assert list(
        Attempt.objects.filter(delivery=delivery).order_by("number").values_list("response_status", flat=True)
    ) == [500, 200]
    subscription.refresh_from_db()
    assert subscription.consecutive_failures == 0


def test_the_sweep_sends_what_is_due_and_nothing_else(receiver, published, django_capture_on_commit_callbacks):
    tenant = TenantFactory()
    subscription = subscribed(receiver, tenant)
    happened(django_capture_on_commit_callbacks, tenant)
    delivery = Delivery.objects.get(subscription=subscription)
    receiver.answer(503)
    failed = services.attempt(delivery.pk, now=T0)
    published.clear()
    assert services.sweep(now=T0) == 0
    assert services.sweep(now=failed.next_attempt_at) == 1
    assert published == [delivery.pk]


def test_repeated_failures_give_up_and_disable_the_subscription_until_its_owner_re_enables_it(
    receiver, published, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOKS_ATTEMPTS = 2
    settings.WEBHOOKS_DISABLE_AFTER = 2
    tenant = TenantFactory()
    subscription = subscribed(receiver, tenant)
    receiver.answer(500, 500, 500, 500)
    now = T0
    for _ in range(2):
        happened(django_capture_on_commit_callbacks, tenant)
    for delivery in Delivery.objects.filter(subscription=subscription).order_by("pk"):
        first = services.attempt(delivery.pk, now=now)
        last = services.attempt(delivery.pk, now=first.next_attempt_at)
        assert (last.status, last.attempts) == (Delivery.Status.FAILED, 2)  # given up after the last try
    subscription.refresh_from_db()
    assert not subscription.enabled
    assert subscription.disabled_reason == "2 deliveries in a row failed after every retry"

    happened(django_capture_on_commit_callbacks, tenant)  # while disabled: nothing is queued for it
    assert Delivery.objects.filter(subscription=subscription).count() == 2

    services.enable(subscription)
    subscription.refresh_from_db()
    assert (subscription.enabled, subscription.consecutive_failures, subscription.disabled_at) == (True, 0, None)


def test_a_replay_sends_the_same_event_again_as_a_new_delivery(receiver, published, django_capture_on_commit_callbacks):
    tenant = TenantFactory()
    subscription = subscribed(receiver, tenant)
    happened(django_capture_on_commit_callbacks, tenant)
    delivery = Delivery.objects.get(subscription=subscription)
    services.attempt(delivery.pk, now=T0)
    with django_capture_on_commit_callbacks(execute=True):
        again = services.replay(delivery, now=T0 + dt.timedelta(hours=1))
    assert (again.replay_of_id, again.event_id) == (delivery.pk, delivery.event_id)
    services.attempt(again.pk, now=T0 + dt.timedelta(hours=1))
    first, second = receiver.received
    assert first.headers["haven-event-id"] == second.headers["haven-event-id"]
    assert first.headers["haven-delivery-id"] != second.headers["haven-delivery-id"]
    assert second.verified


def test_a_redirect_is_not_followed(receiver, published, django_capture_on_commit_callbacks):
    tenant = TenantFactory()
    subscription = subscribed(receiver, tenant)
    happened(django_capture_on_commit_callbacks, tenant)
    receiver.answer((302, {"Location": "http://169.254.169.254/latest/meta-data/"}))
    done = services.attempt(Delivery.objects.get(subscription=subscription).pk, now=T0)
    assert done.status == Delivery.Status.PENDING
    assert done.error == "redirect to http://169.254.169.254/latest/meta-data/ not followed"
    assert len(receiver.received) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/",
        "http://localhost/hook",  # a name that resolves to loopback
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
        "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service: link-local
        "http://10.0.0.7/",
        "http://192.168.1.1/",
        "http://172.16.5.4/",
        "http://[fd00::1]/",
        "http://[fe80::1]/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://100.64.0.1/",  # carrier-grade NAT
        "ftp://example.com/",
    ],
)
def test_production_settings_refuse_to_subscribe_an_address_inside_the_network(url, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    with pytest.raises(services.WebhookRefusal):
        services.subscribe(tenant=None, url=url, events=[EventType.ALERT_OPENED])


def test_production_settings_check_again_at_delivery(receiver, published, settings, django_capture_on_commit_callbacks):
    """Subscribed while allowed (or a name that later resolves inside): refused when sending."""
    tenant = TenantFactory()
    subscription = subscribed(receiver, tenant)
    happened(django_capture_on_commit_callbacks, tenant)
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    done = services.attempt(Delivery.objects.get(subscription=subscription).pk, now=T0)
    assert receiver.received == []
    assert done.response_status is None
    assert "127.0.0.1 is not a public address (loopback)" in done.error
    assert done.status == Delivery.Status.PENDING  # retried later, as any failure


def test_a_tenants_subscription_receives_only_its_own_tenants_events(
    receiver, published, django_capture_on_commit_callbacks
):
    mine, theirs = TenantFactory(), TenantFactory()
    my_subscription = subscribed(receiver, mine)
    their_subscription = subscribed(receiver, theirs)
    site_wide = subscribed(receiver, None)
    happened(django_capture_on_commit_callbacks, mine)
    happened(django_capture_on_commit_callbacks, None)  # the site's own (a circuit's alert, say)
    assert Delivery.objects.filter(subscription=my_subscription).count() == 1
    assert Delivery.objects.filter(subscription=their_subscription).count() == 0
    assert Delivery.objects.filter(subscription=site_wide).count() == 2


def test_an_event_type_not_chosen_is_not_delivered(receiver, published, django_capture_on_commit_callbacks):
    tenant = TenantFactory()
    subscription = subscribed(receiver, tenant, events=[EventType.ALERT_OPENED])
    happened(django_capture_on_commit_callbacks, tenant, type=EventType.INVOICE_ISSUED)
    assert not Delivery.objects.filter(subscription=subscription).exists()


def test_an_unreachable_receiver_is_a_failed_attempt(published, settings, django_capture_on_commit_callbacks):
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nobody listens once it is closed
    tenant = TenantFactory()
    subscription = services.subscribe(tenant=tenant, url=f"http://127.0.0.1:{port}/", events=[EventType.INVOICE_ISSUED])
    happened(django_capture_on_commit_callbacks, tenant)
    done = services.attempt(Delivery.objects.get(subscription=subscription).pk, now=T0)
    assert done.response_status is None
    assert done.error.startswith("ConnectError")


def test_old_events_are_pruned_with_their_log_unless_still_being_tried(
    receiver, published, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOKS_KEEP_DAYS = 30
    tenant = TenantFactory()
    subscription = subscribed(receiver, tenant)
    happened(django_capture_on_commit_callbacks, tenant)
    happened(django_capture_on_commit_callbacks, tenant)
    done, waiting = Delivery.objects.filter(subscription=subscription).order_by("pk")
    services.attempt(done.pk, now=T0)
    assert services.prune(now=T0 + dt.timedelta(days=29)) == 0
    assert services.prune(now=T0 + dt.timedelta(days=31)) == 1  # the delivered one's event
    assert list(Delivery.objects.values_list("pk", flat=True)) == [waiting.pk]
    assert not Attempt.objects.filter(delivery_id=done.pk).exists()
