"""The legal moves of a machine and of a contract: the one place they are written down.

Pure: no database. `hosting.services` applies a move under a row lock and records it.
"""

from django.db import models

from capacity.errors import Refusal


class IllegalTransition(Refusal):
    """A status change the lifecycle does not allow; the message lists what is allowed."""

    code = "illegal_transition"

    def __init__(self, what: str, current: str, requested: str, allowed: frozenset[str]):
        self.current = current
        self.requested = requested
        self.allowed = allowed
        options = ", ".join(sorted(allowed)) or "nothing (final state)"
        super().__init__(f"{what} cannot go from {current} to {requested}; from {current} it can go to: {options}.")


class MachineStatus(models.TextChoices):
    ANNOUNCED = "announced", "Announced"  # on a tenant's packing list
    IN_TRANSIT = "in_transit", "In transit"  # shipped, clearing customs
    RECEIVED = "received", "Received"  # at the site, not racked
    RACKED = "racked", "Racked"  # in a slot, powered off or idle
    TESTING = "testing", "Testing"  # commissioning self-test running
    LIVE = "live", "Live"  # passed commissioning; billing runs
    CURTAILED = "curtailed", "Curtailed"  # told to stop (or limit power) by a curtailment event; still watched
    FAILED = "failed", "Failed"  # failed commissioning; may be re-tested
    RMA = "rma", "RMA"  # sent for repair
    RETURNED = "returned", "Returned"  # handed back to the tenant; final
    CANCELLED = "cancelled", "Cancelled"  # announced, then called off by the tenant before it arrived; final


S = MachineStatus

MACHINE_TRANSITIONS: dict[str, frozenset[str]] = {
    S.ANNOUNCED: frozenset({S.IN_TRANSIT, S.RECEIVED, S.CANCELLED}),
    S.IN_TRANSIT: frozenset({S.RECEIVED, S.CANCELLED}),
    S.RECEIVED: frozenset({S.RACKED, S.RMA, S.RETURNED}),
    S.RACKED: frozenset({S.TESTING, S.RECEIVED}),
    S.TESTING: frozenset({S.LIVE, S.FAILED}),
    S.LIVE: frozenset({S.TESTING, S.RECEIVED, S.CURTAILED}),
    S.CURTAILED: frozenset({S.LIVE, S.RECEIVED}),
    S.FAILED: frozenset({S.TESTING, S.RECEIVED, S.RMA, S.RETURNED}),
    S.RMA: frozenset({S.RECEIVED, S.RETURNED}),
    S.RETURNED: frozenset(),
    S.CANCELLED: frozenset(),
}

# A machine in these states sits in a slot; in the "off the floor" ones it holds none.
IN_SLOT = frozenset({S.RACKED, S.TESTING, S.LIVE, S.CURTAILED})
OFF_FLOOR = frozenset({S.ANNOUNCED, S.IN_TRANSIT, S.RECEIVED, S.RMA, S.RETURNED, S.CANCELLED})
# Registered by the tenant and not at the site yet: what it may still edit (serial, MAC,
# model) or cancel. From received on, the machine is in Haven's hands.
AWAITING_ARRIVAL = frozenset({S.ANNOUNCED, S.IN_TRANSIT})
# No longer with us: their serials and MACs are free, they count against no contract.
GONE = frozenset({S.RETURNED, S.CANCELLED})
# FAILED may stay racked for a re-test or be pulled.
# What may be (re-)commissioned: every state a self-test may start from.
COMMISSIONABLE = frozenset(s for s, moves in MACHINE_TRANSITIONS.items() if S.TESTING in moves)
# What commissioning a whole contract takes: what may be tested and is not live yet. A live
# machine (billed, hashing) is re-tested only when staff name it.
AWAITING_COMMISSIONING = COMMISSIONABLE - {S.LIVE}
# What telemetry polls after go-live: a curtailed machine is watched (its windows say
# `curtailed`; billing and the SLA read that) and its draw verifies the curtailment.
WATCHED = frozenset({S.LIVE, S.CURTAILED})
# In service after go-live: booked power in use, billed per the contract's mode.
IN_SERVICE = WATCHED


def check_machine_move(current: str, requested: str) -> None:
    allowed = MACHINE_TRANSITIONS[current]
    if requested not in allowed:
        raise IllegalTransition("A machine", current, requested, allowed)


class ContractStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SIGNED = "signed", "Signed"  # capacity booked firm
    ACTIVE = "active", "Active"  # machines on the floor, billing
    ENDED = "ended", "Ended"  # capacity released


C = ContractStatus

CONTRACT_TRANSITIONS: dict[str, frozenset[str]] = {
    C.DRAFT: frozenset({C.SIGNED, C.ENDED}),
    C.SIGNED: frozenset({C.ACTIVE, C.ENDED}),
    C.ACTIVE: frozenset({C.ENDED}),
    C.ENDED: frozenset(),
}

BOOKED = frozenset({C.SIGNED, C.ACTIVE})


def check_contract_move(current: str, requested: str) -> None:
    allowed = CONTRACT_TRANSITIONS[current]
    if requested not in allowed:
        raise IllegalTransition("A contract", current, requested, allowed)
