from django.core.management.base import BaseCommand

from hosting import demo


class Command(BaseCommand):
    help = "Seed the demo world (three sites, tenants, contracts, machines, logins). Safe to run again."

    def handle(self, *args, **options):
        demo.seed(log=lambda line: self.stdout.write(f"  {line}"))
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
