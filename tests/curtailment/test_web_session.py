"""A stock Antminer's command in one web session (`probes.web_session`): over real TCP to an
emulated S19 Pro, counted by a transport that only watches what pyasic's clients send."""

from __future__ import annotations

import asyncio
import collections

import httpx
import pyasic
import pytest
from pyasic import settings as pyasic_settings

from hosting.commissioning.emulator import INSTANT, Fleet, MinerSpec, running
from hosting.probes import MinerProbe, web_session

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


def _stop(kind: str | None, session: bool) -> tuple[object, bool]:
    async def go():
        found = MinerProbe.build(IP, kind) if kind else None
        miner = found.miner if found else await pyasic.get_miner(IP)
        if not session:
            return found, await miner.stop_mining()
        async with web_session(miner):
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
    _, ok = _stop(kind, session=False)
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
    found, ok = _stop(kind, session=True)
    assert ok
    assert seen == {
        "transports": 1,
        "GET /cgi-bin/get_miner_conf.cgi 401": 1,
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
        async with web_session(found.miner):
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
        async with web_session(NotPyasics()):
            return True

    assert asyncio.run(go())
