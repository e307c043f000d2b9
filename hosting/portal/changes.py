"""A tenant's view of the change log: the history of one of their own contracts or machines
(the caller has already found the object through `visible_to`), staff shown as "Haven
staff", and none of the host's internals (who signed, which reservation, addresses)."""

from django.db import models

from changelog import present

LATEST = 25
HIDDEN = frozenset({"signed_by", "reservation", "created_by"})


def history(obj: models.Model, n: int = LATEST) -> list[dict]:
    rows = []
    for entry in present.of_object(obj)[:n]:
        fields = [c for c in present.field_changes(entry) if c.field not in HIDDEN]
        if fields or entry.action != 1:
            rows.append(
                {
                    "entry": entry,
                    "action": present.action_name(entry),
                    "actor": present.actor_for_tenant(entry),
                    "fields": fields,
                }
            )
    return rows
