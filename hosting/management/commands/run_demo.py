"""`make demo`: migrate, seed, then run the web server and a Celery worker until Ctrl-C."""

import signal
import subprocess
import sys
import time
from collections import defaultdict

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from capacity.models import Site
from hosting.commissioning import runs
from hosting.demo import DEMO_PASSWORD
from hosting.lifecycle import MachineStatus
from hosting.models import Machine


class Command(BaseCommand):
    help = "Run Haven with demo data: web on http://127.0.0.1:8000 and a Celery worker (with beat). Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument("--no-seed", action="store_true", help="skip migrate and seed_demo")

    def handle(self, *args, addrport, no_seed, **options):
        if not no_seed:
            call_command("migrate", interactive=False, verbosity=0)
            self.stdout.write("Seeding demo data (first run builds ~76,000 slots, a few seconds)…")
            call_command("seed_demo")

        base = f"http://{addrport}"
        self.stdout.write(
            self.style.SUCCESS(
                f"\nHaven is starting on {base}\n"
                f"  staff admin     {base}/admin/   login: staff / {DEMO_PASSWORD}\n"
                f"  tenant login    tenant / {DEMO_PASSWORD}  (member of Northern Hash Ltd)\n"
                f"  database        {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}"
                f" · broker {settings.CELERY_BROKER_URL.split('@')[-1]}\n"
                "Ctrl-C stops the web server, the worker and the emulated fleet.\n"
            )
        )
        python = sys.executable
        queues = ",".join(["celery", *(runs.queue_for(slug) for slug in Site.objects.values_list("slug", flat=True))])
        processes = [
            # The miners and PDUs behind the demo sites; about one machine in four has a fault. It
            # follows the database, so machines racked while the demo runs answer too.
            subprocess.Popen([python, "manage.py", "emulate_fleet", "--fault-every", "4", "--follow"]),  # noqa: S603
            subprocess.Popen([python, "manage.py", "runserver", addrport, "--noreload"]),  # noqa: S603
            # One worker stands in for every site's on-site worker (all their queues) and beat.
            subprocess.Popen(  # noqa: S603 - our own argv
                [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    "hosting",
                    "worker",
                    "--beat",
                    "-Q",
                    queues,
                    "--loglevel",
                    "info",
                    "--concurrency",
                    "2",
                ]
            ),
        ]
        time.sleep(2)  # let the fleet come up before its self-tests start
        waiting = Machine.objects.filter(status=MachineStatus.RACKED, ip__isnull=False).select_related("contract")
        by_contract = defaultdict(list)
        for machine in waiting:
            by_contract[machine.contract].append(machine)
        for contract, machines in by_contract.items():  # a batch per contract: each tenant sees its own
            runs.start_batch(machines, contract=contract, label=f"contract #{contract.pk}: racked machines")
        if by_contract:
            self.stdout.write(f"Commissioning {len(waiting)} racked machine(s) against the emulated fleet.")
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(p.poll() is None for p in processes):
                time.sleep(0.5)
        finally:
            for p in processes:
                if p.poll() is None:
                    p.terminate()
            for p in processes:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        failed = [p for p in processes if p.returncode not in (0, -signal.SIGTERM, -signal.SIGINT)]
        if failed and not stopping:
            self.stderr.write(f"A demo process stopped unexpectedly (exit {failed[0].returncode}); stopped the rest.")
            sys.exit(1)
        self.stdout.write("Stopped.")
