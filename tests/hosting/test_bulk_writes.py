"""Bulk writes go in batches: one bulk_update of 10,000 rows is a single UPDATE with a
10,000-branch CASE, which PostgreSQL's JIT (on by default) spent ~100 s compiling while a
staff request waited. On PostgreSQL with the server's own JIT setting."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from capacity.models import BULK_BATCH_SIZE
from hosting import services
from hosting.lifecycle import MachineStatus
from hosting.models import Machine, MachineEvent
from tests.factories import ContractFactory, machine_model

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

N = 10_000


def test_moving_ten_thousand_machines_updates_them_in_batches():
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        jit = cursor.fetchone()[0]
    contract = ContractFactory()
    model = machine_model()
    Machine.objects.bulk_create(
        [
            Machine(
                tenant=contract.tenant, contract=contract, model=model, serial=f"BULK{i:06d}",
                mac=f"02:00:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}", status=MachineStatus.RECEIVED,
            )
            for i in range(N)
        ],
        batch_size=2000,
    )  # fmt: skip
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        with connection.cursor() as cursor:  # a regression fails here instead of hanging for minutes
            cursor.execute("SET LOCAL statement_timeout = '60s'")
        locked = list(Machine.objects.select_for_update().filter(contract=contract))
        services.move_machines(locked, MachineStatus.RMA, now=contract.created_at, reason="bulk")

    assert Machine.objects.filter(status=MachineStatus.RMA).count() == N
    assert MachineEvent.objects.filter(to_status=MachineStatus.RMA).count() == N
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "hosting_machine"')]
    assert len(updates) == -(-N // BULK_BATCH_SIZE), f"jit={jit}"
    fields = 2  # status, status_changed_at
    assert all(sql.count(" WHEN ") <= BULK_BATCH_SIZE * fields for sql in updates)
