"""The tenant's curtailment page: each contract's rights, the hours used this month against
them, the events that touched (or may touch) its machines and what that does to this
month's invoice. Scoped by `Contract.objects.visible_to`: another tenant's contract is not
found (404), and an event shows only the tenant's own machines in it."""

from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from hosting.curtailment import reports
from hosting.models import Contract
from hosting.paging import paginate
from hosting.portal.views import tenant_required

CONTRACTS_SHOWN = 50


def _mine(request):
    return Contract.objects.visible_to(request.user).select_related("site").order_by("site__name", "pk")


@require_GET
@tenant_required
def curtailment(request):
    page = paginate(request, _mine(request), CONTRACTS_SHOWN)
    rows = reports.contracts_month(page.object_list)
    return render(request, "portal/curtailment.html", {"page": page, "rows": rows})


@require_GET
@tenant_required
def contract_curtailment(request, pk: int):
    contract = get_object_or_404(_mine(request), pk=pk)
    (row,) = reports.contracts_month([contract])
    events = paginate(request, reports.contract_events(contract))
    notice_min = row.terms.curtailment_notice_min if row.terms else 0
    for e in events.object_list:  # the notice the tenant had, against its rights
        e.notice_given_min = max(int((e.starts_at - e.created_at).total_seconds() // 60), 0)
        e.notice_short = e.notice_given_min < notice_min
    top = sorted(row.machines, key=lambda m: (-m.seconds, m.machine_id))[:20]
    serials = dict(contract.machines.filter(pk__in=[m.machine_id for m in top]).values_list("pk", "serial"))
    context = {"row": row, "contract": contract, "events": events, "top": [(m, serials.get(m.machine_id)) for m in top]}
    return render(request, "portal/curtailment_contract.html", context)
