"""The webhook pages and API: a tenant's owners manage its subscriptions (others of the tenant
403; another tenant's subscription 404), the secret is shown once, the delivery log pages
in a constant number of queries, re-enable, replay, rotate, delete; staff see every one and
subscribe for the whole site."""

import pytest
from rest_framework.test import APIClient

from hosting.models import ApiToken
from hosting.webhooks import services
from hosting.webhooks.models import Delivery, EventType, Subscription
from hosting.webhooks.services import Entry

pytestmark = pytest.mark.django_db
URL = "http://127.0.0.1:9/hooks"


@pytest.fixture
def theirs(owner, published, django_capture_on_commit_callbacks):
    """The owner's tenant's subscription, disabled, with three deliveries."""
    tenant = owner.tenants.get()
    subscription = services.subscribe(tenant=tenant, url=URL, events=[EventType.INVOICE_ISSUED])
    with django_capture_on_commit_callbacks(execute=True):
        services.record(EventType.INVOICE_ISSUED, [Entry(tenant_id=tenant.pk, data={"n": n}) for n in range(3)])
    services.disable(subscription, "3 deliveries in a row failed after every retry")
    return subscription


def logged_in(client, user):
    client.force_login(user)
    return client


# --- the portal -----------------------------------------------------------------------------------


def test_an_owner_subscribes_and_sees_the_secret_once(client, owner, published):
    page = logged_in(client, owner).get("/portal/webhooks/")
    assert page.status_code == 200
    assert 'value="alert.opened"' in page.content.decode()  # the event checkboxes
    answer = client.post("/portal/webhooks/", {"url": URL, "events": ["alert.opened", "invoice.issued"]})
    assert answer.status_code == 200
    subscription = Subscription.objects.get()
    assert subscription.tenant == owner.tenants.get()
    assert subscription.events == ["alert.opened", "invoice.issued"]
    assert subscription.secret in answer.content.decode()
    detail = client.get(f"/portal/webhooks/{subscription.pk}/").content.decode()
    assert subscription.secret not in detail
    assert subscription.secret_hint in detail


def test_production_settings_refuse_a_loopback_url_on_the_form(client, owner, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    answer = logged_in(client, owner).post(
        "/portal/webhooks/", {"url": "http://127.0.0.1/", "events": ["alert.opened"]}
    )
    assert answer.status_code == 400
    assert "not a public address (loopback)" in answer.content.decode()
    assert not Subscription.objects.exists()


@pytest.mark.parametrize("path", ["/portal/webhooks/", "/portal/webhooks/{pk}/"])
def test_members_who_are_not_owners_are_refused(client, viewer, theirs, path):
    assert logged_in(client, viewer).get(path.format(pk=theirs.pk)).status_code == 403
    assert client.post("/portal/webhooks/", {"url": URL, "events": ["alert.opened"]}).status_code == 403
    assert client.post(f"/portal/webhooks/{theirs.pk}/enable/").status_code == 403


@pytest.mark.parametrize("action", ["enable/", "rotate/", "delete/", "deliveries/{d}/replay/"])
def test_another_tenants_subscription_is_not_found(client, stranger, theirs, action):
    delivery = theirs.deliveries.first()
    logged_in(client, stranger)
    assert client.get(f"/portal/webhooks/{theirs.pk}/").status_code == 404
    assert client.post(f"/portal/webhooks/{theirs.pk}/{action.format(d=delivery.pk)}").status_code == 404
    assert str(theirs.url) not in client.get("/portal/webhooks/").content.decode()
    theirs.refresh_from_db()
    assert not theirs.enabled


def test_the_owner_re_enables_replays_rotates_and_deletes(client, owner, theirs, published):
    logged_in(client, owner)
    delivery = theirs.deliveries.order_by("pk").first()
    client.post(f"/portal/webhooks/{theirs.pk}/deliveries/{delivery.pk}/replay/")
    assert Delivery.objects.filter(replay_of=delivery).count() == 0  # disabled: re-enable first
    assert client.post(f"/portal/webhooks/{theirs.pk}/enable/").status_code == 302
    theirs.refresh_from_db()
    assert theirs.enabled
    client.post(f"/portal/webhooks/{theirs.pk}/deliveries/{delivery.pk}/replay/")
    assert Delivery.objects.filter(replay_of=delivery).count() == 1
    old = theirs.secret
    rotated = client.post(f"/portal/webhooks/{theirs.pk}/rotate/")
    theirs.refresh_from_db()
    assert theirs.secret != old
    assert theirs.secret in rotated.content.decode()
    assert client.post(f"/portal/webhooks/{theirs.pk}/delete/").status_code == 302
    assert not Subscription.objects.filter(pk=theirs.pk).exists()


def test_the_delivery_log_pages_in_a_constant_number_of_queries(
    client, owner, theirs, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    logged_in(client, owner)
    services.enable(theirs)
    with django_assert_max_num_queries(12) as few:
        assert client.get(f"/portal/webhooks/{theirs.pk}/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        entries = [Entry(tenant_id=theirs.tenant_id, data={"n": n}) for n in range(60)]
        services.record(EventType.INVOICE_ISSUED, entries)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(f"/portal/webhooks/{theirs.pk}/")
    assert "page 1 of 2" in page.content.decode()


# --- staff ----------------------------------------------------------------------------------------


def test_staff_see_every_subscription_and_subscribe_for_the_whole_site(client, staff, theirs, published):
    page = logged_in(client, staff).get("/staff/webhooks/")
    assert page.status_code == 200
    assert theirs.url in page.content.decode()
    assert client.get(f"/staff/webhooks/{theirs.pk}/").status_code == 200
    answer = client.post("/staff/webhooks/", {"url": URL, "events": list(EventType.values), "tenant": ""})
    assert answer.status_code == 200
    assert Subscription.objects.filter(tenant=None).count() == 1


def test_the_staff_pages_are_for_staff(client, owner, theirs):
    assert logged_in(client, owner).get("/staff/webhooks/").status_code == 302  # to the staff login
    assert client.get(f"/staff/webhooks/{theirs.pk}/").status_code == 302


# --- the API --------------------------------------------------------------------------------------


def api_for(user) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {ApiToken.issue(user, 'hooks')[1]}")
    return api


def test_the_api_subscribes_with_the_secret_shown_once_and_lists_without_it(owner, published):
    api = api_for(owner)
    answer = api.post("/api/v1/webhooks/", {"url": URL, "events": ["machine.status_changed"]}, format="json")
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["secret"].startswith("whsec_")
    assert body["tenant"] == owner.tenants.get().slug
    listed = api.get("/api/v1/webhooks/").json()["results"]
    assert [s["id"] for s in listed] == [body["id"]]
    assert "secret" not in listed[0]


def test_the_api_refuses_a_private_address_with_production_settings(owner, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    answer = api_for(owner).post(
        "/api/v1/webhooks/", {"url": "http://10.1.2.3/", "events": ["alert.opened"]}, format="json"
    )
    assert answer.status_code == 400
    assert list(answer.json()["errors"]) == ["url"]


def test_the_api_log_enable_replay_and_rotate(owner, theirs, published):
    api = api_for(owner)
    log = api.get(f"/api/v1/webhooks/{theirs.pk}/deliveries/").json()
    assert log["count"] == 3
    assert {d["event_type"] for d in log["results"]} == {"invoice.issued"}
    delivery = log["results"][0]["id"]
    assert api.post(f"/api/v1/webhooks/{theirs.pk}/deliveries/{delivery}/replay/").status_code == 409  # disabled
    assert api.post(f"/api/v1/webhooks/{theirs.pk}/enable/").json()["enabled"] is True
    replayed = api.post(f"/api/v1/webhooks/{theirs.pk}/deliveries/{delivery}/replay/")
    assert replayed.status_code == 202
    assert replayed.json()["replay_of"] == delivery
    rotated = api.post(f"/api/v1/webhooks/{theirs.pk}/rotate-secret/").json()
    theirs.refresh_from_db()
    assert rotated["secret"] == theirs.secret


def test_the_api_is_tenant_isolated(owner, viewer, stranger, staff, theirs):
    path = f"/api/v1/webhooks/{theirs.pk}/"
    assert api_for(stranger).get(path).status_code == 404
    assert api_for(stranger).get("/api/v1/webhooks/").json()["results"] == []
    assert api_for(stranger).post(f"{path}enable/").status_code == 404
    assert api_for(stranger).get(f"{path}deliveries/").status_code == 404
    assert api_for(stranger).delete(path).status_code == 404
    assert api_for(viewer).get("/api/v1/webhooks/").status_code == 403
    assert api_for(staff).get(path).status_code == 200
    assert api_for(owner).delete(path).status_code == 204
