"""Every staff dashboard is for staff only: anonymous users and tenants go to the admin
login, and the pages only read (GET)."""

import pytest
from django.urls import reverse

from tests.factories import RackFactory, SiteFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def urls():
    site = SiteFactory(slug="rockdale")
    rack = RackFactory(site=site)
    return [
        reverse("staff:home"),
        reverse("staff:forecast"),
        reverse("staff:site_forecast", args=[site.slug]),
        reverse("staff:racks"),
        reverse("staff:rack", args=[rack.pk]),
        reverse("staff:waitlist"),
        reverse("staff:holds"),
        reverse("staff:intake"),
        reverse("staff:fleet"),
        reverse("staff:fleet-of", args=["site", site.slug]),
        reverse("staff:power"),
        reverse("staff:floor-first"),
        reverse("staff:floor", args=[site.slug]),
    ]


def test_anonymous_users_are_sent_to_the_admin_login(client, urls):
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login")), url


def test_tenants_are_refused_and_sent_to_the_admin_login(tenant_client, urls):
    for url in urls:
        response = tenant_client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login")), url


def test_staff_see_every_page_and_only_read(staff_client, urls):
    for url in urls:
        assert staff_client.get(url).status_code == 200, url
        assert staff_client.post(url).status_code == 405, url


def test_unknown_sites_and_racks_are_not_found(staff_client):
    assert staff_client.get(reverse("staff:site_forecast", args=["nowhere"])).status_code == 404
    assert staff_client.get(reverse("staff:rack", args=[999999])).status_code == 404


def test_the_admin_view_site_link_leads_here(staff_client):
    staff_client.get(reverse("staff:home"))  # a session with a staff user
    page = staff_client.get(reverse("admin:index")).content.decode()
    assert f'href="{reverse("staff:home")}"' in page
