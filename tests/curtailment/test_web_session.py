"""A stock Antminer's command in one web session (`probes.web_session`): over real TCP to an
emulated S19 Pro, counted by what only watches the clients — a transport around pyasic's httpx
one, aiohttp's own request tracing for the session's."""

from __future__ import annotations

import asyncio
import collections

import aiohttp
import httpx
import pyasic
import pytest
from pyasic import settings as pyasic_settings

from hosting.commissioning.emulator import INSTANT, Fleet, MinerSpec, running
from hosting.probes import MinerProbe, web_client, web_session

IP = "127.96.0.1"
SPEC = MinerSpec(IP, "antminer-s19-pro", "SESSION1", "02:4e:00:0a:00:01")


class Watched(httpx.AsyncBaseTransport):
    """A real transport, each of its requests and their answers' statuses counted."""

    def __init__(self, seen: collections.Counter):
        self.inner, self.seen = httpx.AsyncHTTPTransport(), seen
        seen["transports"] += 1

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.seen[f"{request.method} {request.url.path} {response.status_code}"] += 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def seen(monkeypatch) -> collections.Counter:
    counter: collections.Counter = collections.Counter()
    monkeypatch.setattr(pyasic_settings, "transport", lambda verify=None: Watched(counter))
    return counter


@pytest.fixture(scope="module")
def fleet():
    with running(Fleet([SPEC], web=True, latency=INSTANT)) as f:
        yield f


def traced(seen: collections.Counter) -> aiohttp.ClientSession:
    """`web_client()`'s session, each request, its answer and each new connection counted."""
    client = web_client()
    trace = aiohttp.TraceConfig()

    async def request_end(_session, _ctx, params) -> None:
        seen[f"{params.method} {params.url.path} {params.response.status}"] += 1

    async def headers_sent(_session, _ctx, params) -> None:
        seen[f"sent {params.method} {params.url.path}"] += 1

    async def connection(_session, _ctx, _params) -> None:
        seen["connections"] += 1

    trace.on_request_end.append(request_end)
    trace.on_request_headers_sent.append(headers_sent)
    trace.on_connection_create_end.append(connection)
    trace.freeze()
    client._trace_configs.append(trace)
    return client


def _stop(kind: str | None, session: bool, seen: collections.Counter) -> tuple[object, bool]:
    async def go():
        found = MinerProbe.build(IP, kind) if kind else None
        miner = found.miner if found else await pyasic.get_miner(IP)
        if not session:
            return found, await miner.stop_mining()
        async with traced(seen) as client, web_session(miner, client):
            return found, await miner.stop_mining()

    return asyncio.run(go())


def _kind() -> str:
    async def detect():
        return MinerProbe.kind_of(await MinerProbe(5).find(IP))

    kind = asyncio.run(detect())
    assert kind is not None
    return kind


def test_pyasic_alone_meets_a_challenge_and_opens_a_client_for_each_call(fleet, seen):
    kind = _kind()
    seen.clear()
    _, ok = _stop(kind, session=False, seen=seen)
    assert ok
    assert seen == {
        "transports": 2,
        "GET /cgi-bin/get_miner_conf.cgi 401": 1,
        "GET /cgi-bin/get_miner_conf.cgi 200": 1,
        "POST /cgi-bin/set_miner_conf.cgi 401": 1,
        "POST /cgi-bin/set_miner_conf.cgi 200": 1,
    }
    assert [c.action for c in fleet.commands(IP)][-1] == "stop"


def test_in_a_session_the_post_reuses_the_reads_challenge_and_connection(fleet, seen):
    kind = _kind()
    seen.clear()
    before = len(fleet.commands(IP))
    found, ok = _stop(kind, session=True, seen=seen)
    assert ok
    assert seen == {  # and no httpx transport at all
        "connections": 1,
        "sent GET /cgi-bin/get_miner_conf.cgi": 2,  # challenged (401), then answered
        "sent POST /cgi-bin/set_miner_conf.cgi": 1,  # with the read's challenge: no 401
        "GET /cgi-bin/get_miner_conf.cgi 200": 1,
        "POST /cgi-bin/set_miner_conf.cgi 200": 1,
    }
    (command,) = fleet.commands(IP)[before:]
    assert (command.command, command.action, command.outcome) == ("set_miner_conf", "stop", "done")
    # The recording of replies stays on, and the web API is itself again afterwards.
    assert ("web", "get_miner_conf") in found.replies
    assert type(found.miner.web.send_command).__name__ == "_Recorded"
    assert found.miner.web.send_command.send.__func__ is type(found.miner.web).send_command


def test_a_session_to_a_silent_web_ui_answers_as_pyasic_does(fleet, seen):
    kind = _kind()

    async def go():
        found = MinerProbe.build("127.96.0.9", kind)  # nothing listens there
        async with web_client() as client, web_session(found.miner, client):
            answer = await found.miner.web.get_miner_conf()
        return found, answer

    found, answer = asyncio.run(go())
    assert answer["success"] is False
    assert answer["message"].startswith("HTTP error occurred")
    assert found.miner.web.send_command.send.__func__ is type(found.miner.web).send_command


def test_other_web_apis_are_left_as_they_are():
    class NotPyasics:
        web = object()

    async def go():
        async with web_client() as client, web_session(NotPyasics(), client):
            return True

    assert asyncio.run(go())
