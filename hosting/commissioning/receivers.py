"""Commissioning's reactions to the commercial side: racked machines get their self-test."""

from django.dispatch import receiver

from hosting.commissioning import runs
from hosting.lifecycle import MachineStatus
from hosting.models import CommissioningPolicy, Machine
from hosting.services import machines_racked


@receiver(machines_racked)
def commission_racked(sender, machine_ids, by=None, commission: bool | None = None, **kwargs) -> None:
    """Queue just-racked machines for their self-test: always (`commission=True`), never
    (`False`), or as each site's policy says (`None`). Sent after commit."""
    if commission is False:
        return
    machines = Machine.objects.filter(pk__in=machine_ids, status=MachineStatus.RACKED).select_related(
        "contract__site__commissioning_policy"
    )
    chosen = [m for m in machines if commission or CommissioningPolicy.for_site(m.contract.site).commission_when_racked]
    if chosen:
        runs.request(chosen, by=by)
