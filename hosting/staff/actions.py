"""What staff do with what tenants ask — shared by the staff pages and the admin, so both
act the same way: close the request and make its move in one transaction."""

from django.db import transaction

from hosting import machine_requests, services
from hosting.commissioning import runs
from hosting.lifecycle import MachineStatus
from hosting.models import MachineRequest

DONE_RESPONSES = {
    MachineRequest.Kind.RETEST: "self-test started",
    MachineRequest.Kind.RMA: "sent for repair (RMA)",
}


def carry_out(request: MachineRequest, *, by) -> MachineRequest:
    """Do what the tenant asked: a re-test starts the machine's self-test, an RMA sends the
    machine for repair. All or nothing: a refused move leaves the request open."""
    with transaction.atomic():
        response = DONE_RESPONSES[MachineRequest.Kind(request.kind)]
        closed = machine_requests.close(request, MachineRequest.State.DONE, by=by, response=response)
        machine = closed.machine
        why = f"{closed.get_kind_display()} requested by the tenant" + (f": {closed.note}" if closed.note else "")
        if closed.kind == MachineRequest.Kind.RETEST:
            runs.request([machine], by=by)
        else:
            services.transition(machine, MachineStatus.RMA, by=by, reason=why)
    return closed


def decline_request(request: MachineRequest, *, by, reason: str) -> MachineRequest:
    return machine_requests.close(request, MachineRequest.State.DECLINED, by=by, response=reason)
