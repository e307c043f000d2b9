"""The portal's quote form and POST /api/v1/quotes/ share one rule (hosting.quotes.requested_kw):
a machine model and a quantity, or IT kW — the same errors on the same fields, and a field
that is wrong on its own shows only its own error."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from hosting.models import Quote
from hosting.portal.forms import QuoteForm

pytestmark = pytest.mark.django_db


def start() -> str:
    return (timezone.localdate() + dt.timedelta(days=30)).isoformat()


def form_errors(**fields) -> dict:
    form = QuoteForm(data={"start_on": start(), "term_months": 12, **fields})
    assert not form.is_valid()
    return {("non_field_errors" if k == "__all__" else k): v for k, v in form.errors.items()}


def api_errors(**fields) -> dict:
    body = {"start_on": start(), "term_months": 12, "contact_email": "miner@example.com", **fields}
    response = APIClient().post("/api/v1/quotes/", body, format="json")
    assert response.status_code == 400, response.content
    return response.json()["errors"]


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"machine_model": "antminer-s19"},
        {"quantity": 10},
        {"machine_model": "antminer-s19", "quantity": 10, "it_kw": "5"},
        {"quantity": 10, "it_kw": "5"},
        {"machine_model": "antminer-s19", "quantity": 2_000_000},
    ],
)
def test_the_form_and_the_api_refuse_the_same_requests_with_the_same_errors(fields):
    assert form_errors(**fields) == api_errors(**fields)


@pytest.mark.parametrize(("quantity", "message"), [(0, "greater than or equal to 1"), ("many", "whole number")])
def test_a_bad_quantity_shows_only_the_quantitys_own_error(quantity, message):
    errors = form_errors(machine_model="antminer-s19", quantity=quantity)
    assert list(errors) == ["quantity"]
    (error,) = errors["quantity"]
    assert message in error


def test_the_quote_page_shows_one_error_for_quantity_0(portal, signed):
    request = {"machine_model": "antminer-s19", "quantity": 0, "start_on": start(), "term_months": 12}
    page = portal.post(reverse("portal:quotes"), request).content.decode()
    assert page.count('class="errors"') == 1
    assert '<span class="errors">Ensure this value is greater than or equal to 1.</span>' in page
    assert not Quote.objects.exists()
