"""`manage.py emulate_fleet`: emulated miners and PDUs for the machines in the database."""

from django.core.management.base import BaseCommand

from hosting.commissioning import emulator, fleet


class Command(BaseCommand):
    help = (
        "Serve an emulated miner (stock Antminer or Whatsminer firmware) at the IP of every machine on the "
        "floor, and an SNMP agent for every PDU, until interrupted. Port 80 (Antminer web UI) needs root; "
        "without it only RPC-only Whatsminers are fully readable."
    )

    def add_arguments(self, parser):
        parser.add_argument("--site", help="only this site's machines and PDUs")
        parser.add_argument(
            "--fault-every",
            type=int,
            default=None,
            help="give about one machine in N a fault (deterministic by serial), as the demo does",
        )
        parser.add_argument("--processes", type=int, default=1, help="shard the miners over N processes")

    def handle(self, *args, site=None, fault_every=None, processes=1, **options):
        miners, pdus = fleet.from_database(site, fault_every)
        faulty = sum(1 for m in miners if m.faults)
        self.stdout.write(
            f"Emulating {len(miners)} miner(s) ({faulty} with a fault) and {len(pdus)} PDU(s); Ctrl-C stops."
        )
        emulator.serve_forever(miners, pdus, processes=processes)
