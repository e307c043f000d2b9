"""`manage.py emulate_fleet`: emulated miners and PDUs for the machines in the database."""

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

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
        parser.add_argument(
            "--stories-every",
            type=int,
            default=None,
            help=(
                "give about one healthy machine in N a story 5-30 minutes after its first contact (a board dies, "
                "a fan stops, an outage and a reboot, a hashrate decay, or it ignores stop; deterministic by serial)"
            ),
        )
        parser.add_argument(
            "--air-swing",
            type=float,
            default=0.0,
            help="the intake air swings this many degrees C over a day, per site and rack (default 0: constant)",
        )
        parser.add_argument(
            "--time-scale",
            type=float,
            default=1.0,
            help="the miners' time (stories, ramps, the air's day) runs N times as fast as the wall clock",
        )
        parser.add_argument("--processes", type=int, default=1, help="shard the miners over N processes")
        parser.add_argument(
            "--latency",
            choices=sorted(emulator.PROFILES),
            default=emulator.REALISTIC,
            help="how fast the miners answer: like real firmware (default) or at once",
        )
        parser.add_argument(
            "--follow",
            action="store_true",
            help="re-read the database every few seconds and serve machines racked (or pulled) meanwhile",
        )
        parser.add_argument("--follow-every", type=float, default=3.0, help="seconds between re-reads (--follow)")

    def handle(
        self,
        *args,
        site=None,
        fault_every=None,
        stories_every=None,
        air_swing=0.0,
        time_scale=1.0,
        processes=1,
        latency,
        follow,
        follow_every,
        **options,
    ):
        if follow and processes > 1:
            raise CommandError("--follow runs the fleet in one process; drop --processes.")
        if not time_scale > 0:
            raise CommandError("--time-scale must be positive.")
        miners, pdus = fleet.from_database(site, fault_every, stories_every, air_swing)
        faulty = sum(1 for m in miners if m.faults)
        told = sum(1 for m in miners if m.story)
        self.stdout.write(
            f"Emulating {len(miners)} miner(s) ({faulty} with a fault, {told} with a story) and {len(pdus)} PDU(s), "
            f"{latency} latency{', following the database' if follow else ''}; Ctrl-C stops."
        )

        def read() -> tuple[list, list]:
            close_old_connections()  # a long-lived thread: never keep a connection the server dropped
            return fleet.from_database(site, fault_every, stories_every, air_swing)

        emulator.serve_forever(
            miners,
            pdus,
            processes=processes,
            latency=latency,
            follow=read if follow else None,
            follow_every_s=follow_every,
            time_scale=time_scale,
        )
