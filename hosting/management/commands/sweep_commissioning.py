from django.core.management.base import BaseCommand

from hosting.commissioning import runs


class Command(BaseCommand):
    help = (
        "Send pending self-tests (the outbox) and hand out again those whose worker died; beat does this each minute."
    )

    def handle(self, *args, **options):
        outcome = runs.sweep()
        self.stdout.write(
            f"orphaned {outcome['orphaned']}, lost {outcome['lost']}, sent {outcome['sent']} self-test run(s)"
        )
