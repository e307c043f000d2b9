"""Staff's webhook pages (/staff/webhooks/): every subscription, tenants' and site-wide ones,
with the same pages as the portal's (hosting/portal/webhooks.py)."""

from collections.abc import Callable

from django.contrib.admin.views.decorators import staff_member_required
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from hosting.portal import webhooks as pages

STAFF = pages.Face("staff", "staff/base.html", site_wide=True)


@require_http_methods(["GET", "POST"])
@staff_member_required
def webhooks(request):
    return pages.list_page(request, STAFF)


@require_GET
@staff_member_required
def webhook(request, pk: int):
    return pages.detail_page(request, pk, STAFF)


def _action(what: str) -> Callable:
    @require_POST
    @staff_member_required
    def view(request, pk: int, delivery_id: int | None = None):
        return pages.act(request, pk, what, STAFF, delivery_id)

    return view


webhook_enable = _action("enable")
webhook_rotate = _action("rotate")
webhook_delete = _action("delete")
webhook_replay = _action("replay")
