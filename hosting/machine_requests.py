"""Tenants' requests about their machines (a re-test, an RMA): filed one at a time per
machine, closed by staff as done or declined. Carrying one out — starting a self-test,
moving the machine — is the caller's part (`hosting.staff.actions`), inside the same
transaction as the close."""

import datetime as dt

from django.db import IntegrityError, transaction
from django.utils import timezone

from capacity.errors import Refusal
from hosting.lifecycle import check_machine_move
from hosting.models import Machine, MachineRequest

NOTE_MAX = 2000


class RequestRefused(Refusal):
    """A request about a machine that cannot be filed or closed as asked."""

    code = "request_refused"


def file(machine: Machine, kind: str, *, note: str = "", by=None, now: dt.datetime | None = None) -> MachineRequest:
    """Open a request: the machine must be able to make the move the request leads to, and
    have no other request open (checked under the machine's row lock; the database's
    one-open-per-machine constraint backs it)."""
    now = now or timezone.now()
    if kind not in MachineRequest.Kind.values:
        raise RequestRefused(f"Unknown request {kind!r}; ask for one of: {', '.join(MachineRequest.Kind.values)}.")
    note = note.strip()
    if len(note) > NOTE_MAX:
        raise RequestRefused(f"The note is {len(note):,} characters; keep it within {NOTE_MAX:,}.")
    label = MachineRequest.Kind(kind).label
    with transaction.atomic():
        locked = Machine.objects.select_for_update().get(pk=machine.pk)
        pending = MachineRequest.objects.open().filter(machine=locked).first()
        if pending is not None:
            raise RequestRefused(
                f"{locked.serial} already has an open request ({pending.get_kind_display()}, "
                f"{pending.created_at:%Y-%m-%d %H:%M} UTC); wait for staff to answer it."
            )
        if kind not in MachineRequest.kinds_for(locked.status):
            status = locked.get_status_display().lower()
            raise RequestRefused(f"{label[:1].upper()}{label[1:]} is not possible for a {status} machine.")
        try:
            with transaction.atomic():
                return MachineRequest.objects.create(
                    machine=locked, kind=kind, note=note, requested_by=by, created_at=now
                )
        except IntegrityError:  # only if the lock was bypassed; the constraint still holds
            raise RequestRefused(f"{locked.serial} already has an open request.") from None


def lock_open(request: MachineRequest) -> MachineRequest:
    """The request, locked, with its machine; refused unless it is still open."""
    locked = MachineRequest.objects.select_for_update(of=("self",)).select_related("machine").get(pk=request.pk)
    if locked.state != MachineRequest.State.OPEN:
        raise RequestRefused(f"This request is already {locked.state}.")
    return locked


def close(
    request: MachineRequest, state: str, *, by=None, response: str = "", now: dt.datetime | None = None
) -> MachineRequest:
    """Mark an open request done or declined (declining says why), recording who and when."""
    now = now or timezone.now()
    response = response.strip()
    if state not in (MachineRequest.State.DONE, MachineRequest.State.DECLINED):
        raise RequestRefused(f"A request closes as done or declined, not {state!r}.")
    if state == MachineRequest.State.DECLINED and not response:
        raise RequestRefused("Say why the request is declined: the tenant reads it.")
    with transaction.atomic():
        locked = lock_open(request)
        if state == MachineRequest.State.DONE:
            # The move it asked for must still be possible (staff may have moved it meanwhile).
            check_machine_move(locked.machine.status, MachineRequest.LEADS_TO[MachineRequest.Kind(locked.kind)])
        locked.state = state
        locked.resolved_at = now
        locked.resolved_by = by
        locked.response = response
        locked.save(update_fields=["state", "resolved_at", "resolved_by", "response"])
    return locked
