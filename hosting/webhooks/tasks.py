"""Celery entry points of webhooks: take ids, re-fetch, safe to run twice (a delivery is
claimed before it is sent, so two copies of a task send it once)."""

from celery import shared_task

from hosting.webhooks import services


@shared_task(name="webhooks.deliver", acks_late=True, ignore_result=True)
def deliver(delivery_id: int) -> None:
    services.attempt(delivery_id)


@shared_task(name="webhooks.sweep", acks_late=True, ignore_result=True)
def sweep() -> int:
    return services.sweep()


@shared_task(name="webhooks.announce_expiring_holds", acks_late=True, ignore_result=True)
def announce_expiring_holds() -> int:
    return len(services.announce_expiring_holds())


@shared_task(name="webhooks.prune", acks_late=True, ignore_result=True)
def prune() -> int:
    return services.prune()
