"""Emulated ASIC miners on loopback, real enough for the unmodified ``pyasic`` to detect and read.

Two vendors, each with its stock firmware as pyasic 0.79 expects it:

* **Antminer (bmminer)** — cgminer-style JSON RPC on TCP 4028 (one command per connection, reply
  NUL-terminated, joined ``a+b`` commands refused with bmminer's "Invalid command") and the lighttpd
  web UI on port 80 behind HTTP Digest auth (realm ``antMiner Configuration``, root/root) serving the
  ``/cgi-bin/*.cgi`` JSON pyasic's ``AntminerModern`` reads. ``/kaonsu/v1/brief`` answers 404 with an
  HTML body, so pyasic does not take the miner for Marathon firmware. Nothing listens on 443.
* **Whatsminer (btminer, API 2.0.x)** — RPC only on 4028: the cgminer-style ``summary``/``devs``/
  ``pools``/``devdetails`` (joinable: ``summary+devs+pools`` is how pyasic gets the wattage) and the
  btminer ``get_*``/``status`` commands. Nothing listens on 80, 443 or 4433 (btminer v3), so pyasic
  falls back to the v2 API.

Readings are deterministic per serial (see ``miner``), every sensor a stock S19 reports included
(four chip and four PCB sensors per board). Faults (``Fault``) can be combined and changed at run
time with ``Fleet.set_faults``; ``Quirk`` names habits of healthy firmware (a slow ``get_psu``).

Miners keep state over time, on the fleet's emulated clock (``clock``: scaled by ``time_scale``,
jumped by ``Fleet.advance`` so tests never wait minutes): a story of ``Event``s per miner
(``MinerSpec.story`` or ``Fleet.set_story``: a board dies, a fan stops and the chips heat up, an
outage then a reboot, a slow loss of hashrate; timed from the fleet's start or the miner's first
contact), temperatures following the work and the air (a daily swing per site and rack), and
curtailment as pyasic sends it: an Antminer's sleep mode through ``set_miner_conf.cgi``, a
Whatsminer's ``power_off``/``power_on``/``adjust_power_limit`` over btminer's encrypted privileged
API, each woken miner ramping back up. Every write a miner takes is recorded (``Fleet.commands``).
Answers take as long as real firmware's and each miner serves one request at a time per port
(``latency``: ``realistic`` by default, ``instant`` for tests that need speed). Miners can join and
leave the floor while it runs (``Fleet.add``/``remove``/``sync``; ``serve_forever(follow=...)``).
Metered PDUs whose readings follow the miners are SNMP agents (``pdu_agent``).

The modules: ``models`` (the emulated models, from ``hosting/catalog.py``), ``miner`` (a spec, its
faults, state over time and readings), ``story`` (events over time), ``clock`` (emulated time and the
air), ``noise`` (deterministic draws), ``latency`` (answer times, one at a time),
``antminer`` and ``whatsminer`` (each firmware's replies), ``protocols`` (RPC and HTTP on asyncio,
HTTP framed by h11), ``server`` (the fleet: listeners, ``running`` in a thread, ``serve_forever``
sharded over processes) and ``pdu_agent``. No Django here: the emulator runs anywhere with pyasic's
dependencies (h11; passlib and cryptography for btminer's privileged API) and pysnmp.
"""

from hosting.commissioning.emulator.clock import Clock
from hosting.commissioning.emulator.latency import INSTANT, PROFILES, REALISTIC
from hosting.commissioning.emulator.miner import FAULTS, RPC_PORT, WEB_PORT, Command, Fault, MinerSpec, Quirk
from hosting.commissioning.emulator.models import EMULATED_MODELS, EmulatedModel
from hosting.commissioning.emulator.pdu_agent import PduAgent, PduSpec
from hosting.commissioning.emulator.server import Fleet, running, serve_forever
from hosting.commissioning.emulator.story import CONTACT, START, Event, Happening

__all__ = (
    "CONTACT",
    "EMULATED_MODELS",
    "FAULTS",
    "INSTANT",
    "PROFILES",
    "REALISTIC",
    "RPC_PORT",
    "START",
    "WEB_PORT",
    "Clock",
    "Command",
    "EmulatedModel",
    "Event",
    "Fault",
    "Fleet",
    "Happening",
    "MinerSpec",
    "PduAgent",
    "PduSpec",
    "Quirk",
    "running",
    "serve_forever",
)
