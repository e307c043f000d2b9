"""Commissioning's reactions to the commercial side: racked machines get their self-test as soon
as they are on the network (racked with an IP, or given one later)."""

import logging

from django.dispatch import receiver

from hosting.commissioning import runs
from hosting.lifecycle import MachineStatus
from hosting.models import CommissioningPolicy, Machine, SelfTestRun
from hosting.services import machines_addressed, machines_racked

log = logging.getLogger(__name__)


@receiver(machines_racked)
def commission_racked(sender, machine_ids, by=None, commission: bool | None = None, **kwargs) -> None:
    """Queue just-racked machines for their self-test: always (`commission=True`), never
    (`False`), or as each site's policy says (`None`). A machine without an IP is not ready:
    it waits, and starts when it gets one (`commission_addressed`). Sent after commit."""
    if commission is False:
        return
    _commission_ready(machine_ids, by=by, commission=commission)


@receiver(machines_addressed)
def commission_addressed(sender, machine_ids, by=None, **kwargs) -> None:
    """A racked machine that waited for its IP starts its self-test, as its site's policy says."""
    _commission_ready(machine_ids, by=by, commission=None)


def _commission_ready(machine_ids, *, by, commission: bool | None) -> None:
    machines = list(
        Machine.objects.filter(pk__in=machine_ids, status=MachineStatus.RACKED)
        .exclude(pk__in=SelfTestRun.objects.open().values("machine_id"))
        .select_related("contract__site__commissioning_policy")
    )
    waiting = [m for m in machines if not m.ip]
    if waiting:
        log.info("%d racked machine(s) wait for an IP before their self-test", len(waiting))
    chosen = [
        m
        for m in machines
        if m.ip and (commission or CommissioningPolicy.for_site(m.contract.site).commission_when_racked)
    ]
    if chosen:
        runs.request(chosen, by=by)
