"""`make demo`: migrate, seed, then run the web server and a Celery worker until Ctrl-C."""

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from capacity.models import Site
from hosting import queues
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
        check_port_free(addrport)
        if not no_seed:
            call_command("migrate", interactive=False, verbosity=0)
            self.stdout.write("Seeding demo data (first run builds ~76,000 slots, a few seconds)…")
            call_command("seed_demo")

        base = f"http://{addrport}"
        self.stdout.write(
            self.style.SUCCESS(
                f"\nHaven is starting on {base}\n"
                f"  staff admin     {base}/admin/   login: staff / {DEMO_PASSWORD}\n"
                f"  tenant logins   {base}/portal/  tenant / {DEMO_PASSWORD}  (owner of Northern Hash Ltd),\n"
                f"                  operator / {DEMO_PASSWORD} (its operator), viewer / {DEMO_PASSWORD} (reads only)\n"
                f"  database        {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}"
                f" · broker {settings.CELERY_BROKER_URL.split('@')[-1]}\n"
                "Ctrl-C stops the web server, the worker and the emulated fleet.\n"
            )
        )
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        # From here on Ctrl-C only sets the flag: the children are stopped below, every time.
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        python = sys.executable
        slugs = list(Site.objects.values_list("slug", flat=True))
        site_queues = [queues.queue_for(slug) for slug in slugs] + [queues.control_queue_for(slug) for slug in slugs]
        processes: list[subprocess.Popen] = []
        try:
            # The miners and PDUs behind the demo sites; about one machine in four has a fault, about one
            # of the others in eight a story 5-30 minutes in (a board dies, a fan stops, an outage, …),
            # and the air swings over the day. It follows the database, so machines racked while the
            # demo runs answer too.
            fleet_args = ["--fault-every", "4", "--stories-every", "8", "--air-swing", "3", "--follow"]
            processes.append(_in_own_group([python, "manage.py", "emulate_fleet", *fleet_args]))
            processes.append(_in_own_group([python, "manage.py", "runserver", addrport, "--noreload"]))
            # One worker stands in for every site's on-site and control workers (all their queues) and beat.
            all_queues = ",".join(["celery", settings.WEBHOOKS_QUEUE, *site_queues])
            worker = ["worker", "--beat", "-Q", all_queues, "--loglevel", "info", "--concurrency", "2"]
            processes.append(_in_own_group([python, "-m", "celery", "-A", "hosting", *worker]))
            time.sleep(2)  # let the fleet come up before its self-tests start
            if not stopping:
                self.start_commissioning()
            while not stopping and all(p.poll() is None for p in processes):
                time.sleep(0.5)
        finally:
            stop_all(processes)
        failed = [p for p in processes if p.returncode not in (0, -signal.SIGTERM, -signal.SIGINT)]
        if failed and not stopping:
            self.stderr.write(f"A demo process stopped unexpectedly (exit {failed[0].returncode}); stopped the rest.")
            sys.exit(1)
        self.stdout.write("Stopped.")

    def start_commissioning(self) -> None:
        waiting = Machine.objects.filter(status=MachineStatus.RACKED, ip__isnull=False).select_related("contract")
        by_contract = defaultdict(list)
        for machine in waiting:
            by_contract[machine.contract].append(machine)
        for contract, machines in by_contract.items():  # a batch per contract: each tenant sees its own
            runs.start_batch(machines, contract=contract, label=f"contract #{contract.pk}: racked machines")
        if by_contract:
            self.stdout.write(f"Commissioning {len(waiting)} racked machine(s) against the emulated fleet.")


def check_port_free(addrport: str) -> None:
    """Refuse to start, in one line, when the web server's address is taken (a demo already
    running, most likely) — before migrating or seeding anything."""
    host, _, port = addrport.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise CommandError(f"--addrport {addrport!r} is not HOST:PORT.") from None
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, number))
        except OSError as exc:
            why = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
            raise CommandError(
                f"{host}:{number} {why} — is another `make demo` running? Stop it, or pass --addrport HOST:PORT."
            ) from None


def _in_own_group(argv: list[str]) -> subprocess.Popen:
    """Start a child in a process group of its own, so that stopping it reaches everything it
    forks (the worker's pool and beat, the fleet's shards), not only its main process."""
    return subprocess.Popen(argv, process_group=0)  # noqa: S603 - our own argv


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def _group_alive(process: subprocess.Popen) -> bool:
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


STOP_GRACE_S = 10


def stop_all(processes: list[subprocess.Popen]) -> None:
    """SIGTERM to each child's whole process group; whatever is left after the grace period
    (a worker waiting for a burn-in to end) is killed, group and all."""
    for p in processes:
        _signal_group(p, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for p in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
    while any(_group_alive(p) for p in processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    for p in processes:
        _signal_group(p, signal.SIGKILL)
        p.wait()
