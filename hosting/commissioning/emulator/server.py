"""The fleet server: emulated miners served on one asyncio loop, in a thread or sharded over processes."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from hosting.commissioning.emulator.clock import Clock, air_temp_c
from hosting.commissioning.emulator.latency import PROFILES, REALISTIC
from hosting.commissioning.emulator.miner import (
    CH_POWER,
    LISTEN_BACKLOG,
    RPC_PORT,
    WEB_PORT,
    Command,
    Fault,
    Miner,
    MinerSpec,
    check_faults,
)
from hosting.commissioning.emulator.pdu_agent import PduAgent, PduSpec
from hosting.commissioning.emulator.protocols import HttpProtocol, RpcProtocol
from hosting.commissioning.emulator.story import Event

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Listening
# --------------------------------------------------------------------------------------------


def _may_bind_port_80(ip: str) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, WEB_PORT))
    except PermissionError:
        return False
    except OSError as e:
        return e.errno != errno.EACCES  # in use by someone else: we may bind, just not there
    finally:
        s.close()
    return True


def _listen(ip: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, port))
        s.listen(LISTEN_BACKLOG)
        s.setblocking(False)
    except BaseException:
        s.close()
        raise
    return s


_warned_no_web = False


class Fleet:
    """Emulated miners served on one asyncio loop (see ``running`` to run it in a thread).

    Its emulated time (``clock``) starts with it and runs ``time_scale`` times as fast as the wall
    clock; ``advance`` jumps it. ``epoch`` is the Unix time its second 0 stands for (the start by
    default): given it, the same serials tell the same stories and breathe the same air.
    """

    def __init__(
        self,
        miners: list[MinerSpec],
        *,
        web: bool | None = None,
        flap_period_s: float = 2.0,
        latency: str = REALISTIC,
        time_scale: float = 1.0,
        epoch: float | None = None,
        clock: Clock | None = None,
    ):
        if latency not in PROFILES:
            raise ValueError(f"unknown latency profile {latency!r}; known: {sorted(PROFILES)}")
        self.latency = latency  # each miner's unless its spec names another
        self.clock = clock if clock is not None else Clock(time_scale, epoch)
        self._watched: set[Miner] = set()  # whose listeners open and close by themselves (outages, flaps)
        self._miners: dict[str, Miner] = {}
        for spec in miners:
            if spec.ip in self._miners:
                raise ValueError(f"two miners on {spec.ip}")
            self._miners[spec.ip] = m = Miner(self, spec)
            self._watch_if_timed(m)
        self._web_req = web
        self._web = bool(web)
        self.flap_period_s = float(flap_period_s)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._tick_task: asyncio.Task | None = None
        self._started = False
        self.pdu_floor: PduFloor | None = None  # the PDU agents reading this fleet, while `running`

    # -- public API ------------------------------------------------------------------------

    @property
    def web(self) -> bool:
        """Whether the Antminer web UIs (port 80) are served."""
        return self._web

    def reported_mac(self, ip: str) -> str:
        return self._get(ip).profile.mac

    async def start(self) -> None:
        if self._started:
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self.clock.start()
        if self._web_req is None:
            first = next(iter(self._miners), "127.0.0.1")
            self._web = _may_bind_port_80(first)
            if not self._web and any(m.base.model.is_antminer for m in self._miners.values()):
                global _warned_no_web
                if not _warned_no_web:
                    _warned_no_web = True
                    log.warning(
                        "emulator: this process may not bind port 80; Antminer web UIs are off, so only "
                        "Whatsminers (RPC-only) are fully readable"
                    )
        self._started = True
        try:
            for m in self._miners.values():
                if self._should_listen(m):
                    await self._open(m)
        except BaseException:
            await self.stop()
            raise
        self._tick_task = asyncio.create_task(self._tick_loop(), name="emulator-tick")

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        if self._tick_task is not None:
            self._tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick_task
            self._tick_task = None
        for m in self._miners.values():
            self._close(m)
            _drop(m)
        await asyncio.sleep(0)

    def set_faults(self, ip: str, faults: Iterable[str]) -> None:
        """Replace a miner's faults, effective for the next request (and its listeners at once)."""
        m = self._get(ip)
        faults = check_faults(faults)
        m.set_faults(faults)
        m.flap_since = None
        if not self._started or self._loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            self._reconcile_nowait(m)
        else:
            fut = asyncio.run_coroutine_threadsafe(self._reconcile(m), self._loop)
            fut.result(timeout=30)

    # -- time --------------------------------------------------------------------------------

    def now_s(self) -> float:
        """The fleet's emulated time: seconds since it started (scaled, advanced)."""
        return self.clock.now_s()

    def advance(self, seconds: float) -> None:
        """Move the fleet's time on by `seconds` at once (from any thread): stories, ramps and the air
        jump there, and miners whose outage began or ended meanwhile close or open at once."""
        self.clock.advance(seconds)
        self._from_anywhere(self._reconcile_watched())

    def set_story(self, ip: str, story: Iterable[Event]) -> None:
        """Replace a miner's story at run time (times from the fleet's start or its first contact, as
        each event says)."""
        m = self._get(ip)
        m.set_story(story)
        self._watch_if_timed(m)
        self._from_anywhere(self._reconcile(m))

    def commands(self, ip: str) -> list[Command]:
        """The writes the miner at `ip` received, oldest first."""
        return list(self._get(ip).commands)

    def watch(self, m: Miner) -> None:
        """Keep `m`'s listeners in step with its timed outages or flapping link."""
        self._watched.add(m)

    def _watch_if_timed(self, m: Miner) -> None:
        if m.has_timed_outages():
            self._watched.add(m)

    async def _reconcile_watched(self) -> None:
        for m in list(self._watched):
            if self._miners.get(m.ip) is not m:
                self._watched.discard(m)
                continue
            try:
                await self._reconcile(m)
            except OSError as e:  # e.g. the address got taken meanwhile
                log.warning("emulator: %s", e)

    @property
    def specs(self) -> dict[str, MinerSpec]:
        """The miners on the floor now, by IP."""
        return {ip: m.spec for ip, m in self._miners.items()}

    def add(self, spec: MinerSpec) -> None:
        """Put a miner on the floor at run time: it answers once this returns (from any thread)."""
        if spec.ip in self._miners:
            raise ValueError(f"two miners on {spec.ip}")
        self._from_anywhere(self._add(Miner(self, spec)))

    def remove(self, ip: str) -> None:
        """Take a miner off the floor: its listeners close and its connections drop."""
        self._from_anywhere(self._remove(self._get(ip)))

    async def sync(self, specs: Iterable[MinerSpec]) -> tuple[int, int]:
        """Make the floor `specs` (on the fleet's loop): add the new, remove the gone, replace the
        changed; returns (added, removed)."""
        wanted = {s.ip: s for s in specs}
        gone = [m for ip, m in self._miners.items() if wanted.get(ip) != m.spec]
        for m in gone:
            await self._remove(m)
        fresh = [s for ip, s in wanted.items() if ip not in self._miners]
        for spec in fresh:
            await self._add(Miner(self, spec))
        return len(fresh), len(gone)

    def _from_anywhere(self, coro) -> None:
        if not self._started or self._loop is None:
            _run_now(coro)
        elif threading.get_ident() == self._loop_thread:
            self._loop.create_task(coro).add_done_callback(_log_task_error)
        else:
            asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    async def _add(self, m: Miner) -> None:
        if m.ip in self._miners:
            raise ValueError(f"two miners on {m.ip}")
        self._miners[m.ip] = m
        self._watch_if_timed(m)
        if self._started:
            await self._reconcile(m)

    async def _remove(self, m: Miner) -> None:
        if self._miners.get(m.ip) is m:
            del self._miners[m.ip]
        self._watched.discard(m)
        self._close(m)
        _drop(m)

    def power_w(self, ip: str) -> float:
        """What the miner draws at the wall right now (0 when unreachable, i.e. powered off)."""
        return self._get(ip).power_sample(CH_POWER)

    def inlet_temp_c(self, ip: str) -> float:
        """The air at the miner's intake now."""
        return self._get(ip).air_c()

    def air_temp_c(self, mean_c: float, swing_c: float, site: str = "", rack: str = "") -> float:
        """The air now at a place of the floor (a PDU's inlet sensor)."""
        return air_temp_c(mean_c, swing_c, site, rack, self.clock.wall_s())

    # -- listeners ---------------------------------------------------------------------------

    def _get(self, ip: str) -> Miner:
        try:
            return self._miners[str(ip)]
        except KeyError:
            raise KeyError(f"no emulated miner on {ip}") from None

    def _ports(self, m: Miner) -> tuple[int, ...]:
        if m.base.model.is_antminer and self._web:
            return (RPC_PORT, WEB_PORT)
        return (RPC_PORT,)

    def flap_elapsed_s(self, ip: str) -> float | None:
        """Seconds since a flapping miner was first contacted (None before). It answers for
        ``flap_period_s`` from then, refuses connections for the next, and so on: a link that
        holds long enough to be identified and then comes and goes during the burn-in."""
        since = self._get(ip).flap_since
        return None if since is None else time.monotonic() - since

    def flap_down(self, ip: str) -> bool:
        """Whether the flapping miner at `ip` refuses connections now (its odd periods)."""
        elapsed = self.flap_elapsed_s(ip)
        return elapsed is not None and int(elapsed // self.flap_period_s) % 2 == 1

    def _should_listen(self, m: Miner) -> bool:
        f = m.base.faults
        if not self._started or m.is_down() or self._miners.get(m.ip) is not m:
            return False
        return not (Fault.FLAPPING in f and self.flap_down(m.ip))

    async def _open(self, m: Miner) -> None:
        if m.opening or m.servers:
            return
        m.opening = True
        try:
            socks = []
            try:
                for port in self._ports(m):
                    socks.append((port, _listen(m.ip, port)))
            except OSError as e:
                for _, s in socks:
                    s.close()
                raise OSError(e.errno, f"emulator: cannot listen on {m.ip}: {e.strerror}") from e
            loop = asyncio.get_running_loop()
            servers = []
            for port, s in socks:
                proto = HttpProtocol if port == WEB_PORT else RpcProtocol
                servers.append(await loop.create_server(functools.partial(proto, m), sock=s, backlog=LISTEN_BACKLOG))
            m.servers = servers
        finally:
            m.opening = False
        if not self._should_listen(m):  # changed while we were opening
            self._close(m)

    def _close(self, m: Miner) -> None:
        servers, m.servers = m.servers, []
        for s in servers:
            s.close()

    async def _reconcile(self, m: Miner) -> None:
        if self._should_listen(m):
            if not m.servers:
                await self._open(m)
        else:
            if m.servers:
                self._close(m)
            if m.is_down():
                _drop(m)  # powered off: its open connections die with it

    def _reconcile_nowait(self, m: Miner) -> None:
        if not self._should_listen(m):
            self._close(m)  # synchronous: refused from now on
        elif not m.servers:
            t = asyncio.get_running_loop().create_task(self._open(m))
            t.add_done_callback(_log_task_error)

    async def _tick_loop(self) -> None:
        """Open and close the listeners of miners whose link flaps or whose outage begins or ends, as
        their times come (flaps to within 1/20 of a period, outages to within TICK_S)."""
        every = min(TICK_S, self.flap_period_s / 20)
        while True:
            await asyncio.sleep(every)
            await self._reconcile_watched()


TICK_S = 0.1


def _drop(m: Miner) -> None:
    for t in list(m.conns):
        t.abort()
    m.conns.clear()


def _run_now(coro) -> None:
    """Run a coroutine that does not suspend (the fleet's own, before it serves) to its end."""
    try:
        coro.send(None)
    except StopIteration:
        return
    coro.close()
    raise RuntimeError("emulator: the fleet is not serving; nothing may wait")


def _log_task_error(t: asyncio.Task) -> None:
    if not t.cancelled() and t.exception() is not None:
        log.warning("emulator: %s", t.exception())


# --------------------------------------------------------------------------------------------
# Running it
# --------------------------------------------------------------------------------------------


class PduFloor:
    """The running PDU agents by address, reading their outlets' power from `source`."""

    def __init__(self, source: Fleet):
        self.source = source
        self.agents: dict[tuple[str, int], PduAgent] = {}

    async def sync(self, specs: Iterable[PduSpec]) -> tuple[int, int]:
        """Serve exactly `specs`: start the new, stop the gone, rewire the changed outlets;
        returns (started, stopped)."""
        wanted = {(p.host, p.port): p for p in specs}
        stopped = 0
        for addr, agent in list(self.agents.items()):
            spec = wanted.get(addr)
            if spec is not None and spec.same_device(agent.spec):
                agent.set_outlets(spec.outlets)
                continue
            await agent.stop()
            del self.agents[addr]
            stopped += 1
        fresh = [p for addr, p in wanted.items() if addr not in self.agents]
        for spec in fresh:
            agent = PduAgent(spec, self.source)
            await agent.start()
            self.agents[(spec.host, spec.port)] = agent
        return len(fresh), stopped

    async def stop(self) -> None:
        for agent in self.agents.values():
            await agent.stop()
        self.agents.clear()


@contextlib.asynccontextmanager
async def _serving(fleet: Fleet, pdus: Iterable[PduSpec]):
    """The fleet and PDU agents for ``pdus`` (reading the fleet) started, and stopped in reverse
    order however the block ends."""
    floor = fleet.pdu_floor = PduFloor(fleet)
    try:
        await fleet.start()
        await floor.sync(pdus)
        yield floor
    finally:
        await floor.stop()
        await fleet.stop()


Follow = Callable[[], tuple[list[MinerSpec], list[PduSpec]]]


async def _follow(fleet: Fleet, floor: PduFloor, read: Follow, every_s: float) -> None:
    """Re-read what should be on the floor every `every_s` and make the fleet and PDUs match.

    `read` is blocking (a database), so it runs in a thread; the fleet changes on its loop."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(every_s)
        try:
            miners, pdus = await loop.run_in_executor(None, read)
            started, stopped = await floor.sync(pdus)  # wired first: a miner that answers is metered
            added, removed = await fleet.sync(miners)
        except Exception:  # a database that is away for a moment: try again next turn
            log.exception("emulator: following the floor failed")
            continue
        if added or removed or started or stopped:
            log.info(
                "emulator: +%d/-%d miners, +%d/-%d PDUs (%d miners now)",
                added, removed, started, stopped, len(fleet.specs),
            )  # fmt: skip


@contextlib.contextmanager
def running(fleet: Fleet, pdus: Iterable[PduSpec] = ()) -> Iterator[Fleet]:
    """Run ``fleet`` (and PDU agents for ``pdus``) on an asyncio loop in a background thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="miner-emulator", daemon=True)
    thread.start()
    serving = _serving(fleet, pdus)
    try:
        asyncio.run_coroutine_threadsafe(serving.__aenter__(), loop).result(timeout=600)
        try:
            yield fleet
        finally:
            asyncio.run_coroutine_threadsafe(serving.__aexit__(None, None, None), loop).result(timeout=60)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=60)
        loop.close()


def _raise_fd_limit() -> None:
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


async def _serve(
    miners: list[MinerSpec],
    pdus: list[PduSpec],
    web: bool | None,
    latency: str,
    clock: Clock,
    follow: Follow | None = None,
    follow_every_s: float = 5.0,
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    fleet = Fleet(miners, web=web, latency=latency, clock=clock)
    async with _serving(fleet, pdus) as floor:
        log.info("emulator: pid %d serves %d miners, %d PDUs", os.getpid(), len(miners), len(floor.agents))
        following = None
        if follow is not None:
            following = asyncio.create_task(_follow(fleet, floor, follow, follow_every_s), name="emulator-follow")
        try:
            await stop.wait()
        finally:
            if following is not None:
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await following


def _child(miners, pdus, web, latency, clock) -> None:
    asyncio.run(_serve(miners, pdus, web, latency, clock))


def shard(miners: list[MinerSpec], pdus: list[PduSpec], processes: int) -> list[tuple[list[MinerSpec], list[PduSpec]]]:
    """Deal the floor over `processes`: each PDU with every miner it feeds in one process (its outlet
    readings follow what those miners were told and what befell them), then the unmetered miners,
    each to the least loaded. Deterministic."""
    by_ip = {m.ip: m for m in miners}
    taken: set[str] = set()
    groups: list[tuple[list[MinerSpec], list[PduSpec]]] = []
    for pdu in pdus:
        fed = []
        for ip in pdu.outlets.values():
            if ip in by_ip and ip not in taken:
                taken.add(ip)
                fed.append(by_ip[ip])
        groups.append((fed, [pdu]))
    shards: list[tuple[list[MinerSpec], list[PduSpec]]] = [([], []) for _ in range(processes)]
    for fed, group_pdus in sorted(groups, key=lambda g: -len(g[0])):  # stable: biggest first
        target = min(shards, key=lambda s: len(s[0]))
        target[0].extend(fed)
        target[1].extend(group_pdus)
    for m in miners:
        if m.ip not in taken:
            min(shards, key=lambda s: len(s[0]))[0].append(m)
    return shards


def serve_forever(
    miners: list[MinerSpec],
    pdus: Iterable[PduSpec] = (),
    processes: int = 1,
    *,
    web: bool | None = None,
    latency: str = REALISTIC,
    follow: Follow | None = None,
    follow_every_s: float = 5.0,
    time_scale: float = 1.0,
    epoch: float | None = None,
) -> None:
    """Serve ``miners`` (and PDU agents) until SIGINT/SIGTERM, sharded over ``processes`` forks.

    With several processes each PDU is served in the process that serves the miners on its outlets
    (``shard``), so its readings follow their state; all share one clock (started before the forks).

    With ``follow`` (one process only) the floor is re-read every ``follow_every_s``: miners and
    PDUs that appear are served, those that go are taken down.
    """
    if latency not in PROFILES:
        raise ValueError(f"unknown latency profile {latency!r}; known: {sorted(PROFILES)}")
    _raise_fd_limit()
    pdus = list(pdus)
    if follow is not None and processes > 1:
        raise ValueError("following the floor runs in one process")
    clock = Clock(time_scale, epoch)
    clock.start()
    processes = max(1, min(int(processes), max(1, len(miners))))
    if processes == 1:
        asyncio.run(_serve(list(miners), pdus, web, latency, clock, follow, follow_every_s))
        return
    if web is None:
        first = miners[0].ip if miners else "127.0.0.1"
        web = _may_bind_port_80(first)
    ctx = multiprocessing.get_context("fork")
    procs = []
    for i, (shard_miners, shard_pdus) in enumerate(shard(list(miners), pdus, processes)):
        args = (shard_miners, shard_pdus, web, latency, clock)
        procs.append(ctx.Process(target=_child, args=args, name=f"miner-emulator-{i}", daemon=False))
    stopping = threading.Event()

    def _on_signal(signum, frame):
        stopping.set()

    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for p in procs:
            p.start()
        while not stopping.is_set():
            if any(not p.is_alive() for p in procs):
                log.error("emulator: a shard process exited; stopping the others")
                break
            stopping.wait(0.5)
    finally:
        for p in procs:
            if p.is_alive() and p.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGTERM)
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join()
        for s, h in old.items():
            signal.signal(s, h)
