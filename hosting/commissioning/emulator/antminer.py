"""Antminer stock firmware: bmminer's RPC replies and the lighttpd web UI's cgi-bin JSON, behind Digest auth."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from hosting.commissioning.emulator.miner import (
    CH_RPC_STATS,
    CH_RPC_SUMMARY,
    CH_WEB_STATS,
    CH_WEB_SUMMARY,
    WEB_REALM,
    WEB_USER,
    Miner,
)

# --------------------------------------------------------------------------------------------
# bmminer RPC replies
# --------------------------------------------------------------------------------------------

_BM_DESC = "cgminer 1.0.0"
_BM_MINER = "uart_trans.1.3"


def _bm_status(code: int, msg: str, when: int, status: str = "S") -> str:
    return f'"STATUS":[{{"STATUS":"{status}","When":{when},"Code":{code},"Msg":"{msg}","Description":"{_BM_DESC}"}}]'


def _bm_invalid(when: int) -> str:
    return "{" + _bm_status(14, "Invalid command", when, "E") + ',"id":1}'


def _am_version(m: Miner, when: int) -> str:
    model = m.profile.model
    return (
        "{" + _bm_status(22, "CGMiner versions", when) + f',"VERSION":[{{"BMMiner":"1.0.0","API":"3.1",'
        f'"Miner":"{_BM_MINER}","CompileTime":"{model.firmware}","Type":"{model.reported_type}"}}],"id":1}}'
    )


def _am_summary(m: Miner, when: int) -> str:
    samples = m.board_samples(CH_RPC_SUMMARY)
    ghs = sum(s.rate_ghs for s in samples)
    el = m.elapsed()
    acc = el // 14
    return (
        "{" + _bm_status(11, "Summary", when) + f',"SUMMARY":[{{"Elapsed":{el},"GHS 5s":{ghs:.2f},'
        f'"GHS av":{ghs * 0.999:.2f},"GHS 30m":{ghs * 1.001:.2f},"Found Blocks":0,"Getworks":{el // 30},'
        f'"Accepted":{acc},"Rejected":{acc // 400},"Hardware Errors":{el // 900},"Utility":{acc * 60 / max(el, 1):.2f},'
        f'"Discarded":{el // 5},"Stale":0,"Get Failures":0,"Local Work":{el * 60},"Remote Failures":0,'
        f'"Network Blocks":{el // 600},"Total MH":{ghs * el * 1000:.4e},"Work Utility":{ghs * 13.97:.2f},'
        f'"Difficulty Accepted":{acc * 65536:.8f},"Difficulty Rejected":{acc // 400 * 65536:.8f},'
        f'"Difficulty Stale":0.00000000,"Best Share":{1000000 + el * 37},"Device Hardware%":0.0001,'
        f'"Device Rejected%":0.2500,"Pool Rejected%":0.2500,"Pool Stale%":0.0000,"Last getwork":{when}}}],"id":1}}'
    )


def _am_stats(m: Miner, when: int) -> str:
    p = m.profile
    model = p.model
    samples = {s.board.slot: s for s in m.board_samples(CH_RPC_STATS)}
    fans = m.fan_samples(CH_RPC_STATS)
    el = m.elapsed()
    ghs = sum(s.rate_ghs for s in samples.values())
    parts = [
        f'"STATS":0,"ID":"BTM_SOC0","Elapsed":{el},"Calls":0,"Wait":0.000000,"Max":0.000000,"Min":99999999.000000,'
        f'"GHS 5s":"{ghs:.2f}","GHS av":{ghs * 0.999:.2f},"rate_30m":{ghs * 1.001:.2f},"Mode":2,'
        f'"miner_count":{len(samples)},"frequency":{model.freq_mhz},"fan_num":{len(fans)}'
    ]
    parts.extend(f'"fan{i + 1}":{f}' for i, f in enumerate(fans))
    parts.append(f'"temp_num":{len(samples)}')
    tmax = 0
    for b in p.boards:
        i = b.slot + 1
        s = samples.get(b.slot)
        if s is None:
            parts.append(f'"temp{i}":0,"temp2_{i}":0,"temp_pcb{i}":"0-0-0-0","temp_chip{i}":"0-0-0-0"')
            continue
        tmax = max(tmax, *(round(t) for t in s.pcb_c))
        # Four sensors a board, inlet side first, as "a-b-c-d".
        parts.append(
            f'"temp{i}":{round(s.chip_mean_c)},"temp2_{i}":{round(s.pcb_mean_c)},'
            f'"temp_pcb{i}":"{"-".join(str(round(t)) for t in s.pcb_c)}",'
            f'"temp_chip{i}":"{"-".join(str(round(t)) for t in s.chip_c)}"'
        )
    parts.append(
        f'"total_rateideal":{p.rate_ideal_ghs:.2f},"rate_unit":"GH","total_freqavg":{model.freq_mhz},'
        f'"total_acn":{sum(b.chips for b in p.boards)},"total rate":{ghs:.2f},"temp_max":{tmax},"no_matching_work":0'
    )
    for b in p.boards:
        i = b.slot + 1
        s = samples.get(b.slot)
        rate = f"{s.rate_ghs:.2f}" if s else "0.00"
        parts.append(
            f'"chain_acn{i}":{b.chips},"chain_acs{i}":"{b.asic}","chain_hw{i}":{el // 2700 if s else 0},'
            f'"chain_rate{i}":"{rate}","chain_freq{i}":{model.freq_mhz if s else 0}'
        )
    parts.append(f'"miner_version":"{_BM_MINER}","miner_id":"{m.spec.serial}"')
    # Real bmminer forgets the comma between the two STATS objects (pyasic mends "}{").
    return (
        "{" + _bm_status(70, "CGMiner stats", when) + f',"STATS":[{{"BMMiner":"1.0.0","Miner":"{_BM_MINER}",'
        f'"CompileTime":"{model.firmware}","Type":"{model.reported_type}"}}{{' + ",".join(parts) + '}],"id":1}'
    )


def pools_body(m: Miner, when: int, desc: str) -> str:
    el = m.elapsed()
    acc = el // 14
    user = json.dumps(f"haven.{m.profile.hostname}")
    rows = []
    for i, url in enumerate(
        ("stratum+tcp://stratum.haven.example:3333", "stratum+tcp://backup.haven.example:3333", "")
    ):
        active = i == 0
        rows.append(
            f'{{"POOL":{i},"URL":"{url}","Status":"{"Alive" if url else "Dead"}","Priority":{i},"Quota":1,'
            f'"Long Poll":"N","Getworks":{el // 30 if active else 0},"Accepted":{acc if active else 0},'
            f'"Rejected":{acc // 400 if active else 0},"Discarded":0,"Stale":0,"Get Failures":0,'
            f'"Remote Failures":0,"User":{user if url else chr(34) * 2},"Last Share Time":{when - 3 if active else 0},'
            f'"Diff":"65.5K","Diff1 Shares":0,"Proxy Type":"","Proxy":"",'
            f'"Difficulty Accepted":{acc * 65536 if active else 0},'
            f'"Difficulty Rejected":0,"Difficulty Stale":0,"Last Share Difficulty":{65536 if active else 0},'
            f'"Has Stratum":true,"Stratum Active":{"true" if active else "false"},'
            f'"Stratum URL":"{url[14:].split(":")[0]}","Best Share":{1000000 + el * 37 if active else 0},'
            f'"Pool Rejected%":0.2500,"Pool Stale%":0.0000,"Bad Work":0,"Current Block Height":0,'
            f'"Current Block Version":536870916}}'
        )
    status = f'"STATUS":[{{"STATUS":"S","When":{when},"Code":7,"Msg":"3 Pool(s)","Description":"{desc}"}}]'
    return "{" + status + ',"POOLS":[' + ",".join(rows) + '],"id":1}'


def _am_pools(m: Miner, when: int) -> str:
    return pools_body(m, when, _BM_DESC)


def _am_devdetails(m: Miner, when: int) -> str:
    rows = ",".join(
        f'{{"DEVDETAILS":{i},"Name":"BTM_SOC{i}","ID":{i},"Driver":"bitmain_soc","Kernel":"","Model":"",'
        f'"Device Path":"","Target Temperature":0,"Cutoff Temperature":0}}'
        for i, _b in enumerate(m.profile.present)
    )
    return "{" + _bm_status(69, "Device Details", when) + ',"DEVDETAILS":[' + rows + '],"id":1}'


_AM_RPC: dict[str, Callable[[Miner, int], str]] = {
    "version": _am_version,
    "summary": _am_summary,
    "stats": _am_stats,
    "pools": _am_pools,
    "devdetails": _am_devdetails,
}


# --------------------------------------------------------------------------------------------
# Antminer web UI (cgi-bin JSON)
# --------------------------------------------------------------------------------------------


def rpc_reply(m: Miner, command: str | None, when: int) -> str:
    """bmminer's answer to one command (``None``: the request was not JSON with a command)."""
    if command is None:
        return "{" + _bm_status(23, "Invalid JSON", when, "E") + ',"id":1}'
    fn = _AM_RPC.get(command)
    return fn(m, when) if fn is not None else _bm_invalid(when)  # incl. joined "a+b"


# --------------------------------------------------------------------------------------------
# The web UI (lighttpd, cgi-bin JSON)
# --------------------------------------------------------------------------------------------


def _web_info(m: Miner, when: int, msg: str) -> str:
    model = m.profile.model
    return (
        f'"STATUS":{{"STATUS":"S","when":{when},"Msg":"{msg}","api_version":"1.0.0"}},'
        f'"INFO":{{"miner_version":"{_BM_MINER}","CompileTime":"{model.firmware}","type":"{model.reported_type}"}}'
    )


def _web_stats(m: Miner) -> str:
    p = m.profile
    model = p.model
    samples = m.board_samples(CH_WEB_STATS)
    fans = m.fan_samples(CH_WEB_STATS)
    ghs = sum(s.rate_ghs for s in samples)
    el = m.elapsed()
    chains = []
    for s in samples:  # a dead board is simply not in the list
        b = s.board
        pcb = ",".join(str(round(t)) for t in s.pcb_c)
        chip = ",".join(str(round(t)) for t in s.chip_c)
        chains.append(
            f'{{"index":{b.slot},"freq_avg":{model.freq_mhz},"rate_ideal":{b.ideal_ghs:.2f},'
            f'"rate_real":{s.rate_ghs:.2f},"asic_num":{b.chips},"asic":"{b.asic}","temp_pic":[{pcb}],'
            f'"temp_pcb":[{pcb}],"temp_chip":[{chip}],"hw":{el // 2700},"eeprom_loaded":true,"sn":"{b.sn}",'
            f'"hwp":0.0,"tpl":[[{round(max(s.chip_c))}]]}}'
        )
    return (
        "{" + _web_info(m, int(time.time()), "stats") + f',"STATS":[{{"elapsed":{el},"rate_5s":{ghs:.2f},'
        f'"rate_30m":{ghs * 1.001:.2f},"rate_avg":{ghs * 0.999:.2f},"rate_ideal":{p.rate_ideal_ghs:.2f},'
        f'"rate_unit":"GH/s","chain_num":{len(chains)},"fan_num":{len(fans)},"fan":[{",".join(map(str, fans))}],'
        f'"hwp_total":0.0001,"miner-mode":{m.work_mode()},"freq-level":100,"chain":[' + ",".join(chains) + "]}]}"
    )


def _web_summary(m: Miner) -> str:
    p = m.profile
    samples = m.board_samples(CH_WEB_SUMMARY)
    ghs = sum(s.rate_ghs for s in samples)
    el = m.elapsed()
    bad = {kind: (st, msg) for kind, st, msg in p.errors_am}
    ok = ("s", "")
    status = ",".join(
        f'{{"type":"{kind}","status":"{bad.get(kind, ok)[0]}","code":0,"msg":{json.dumps(bad.get(kind, ok)[1])}}}'
        for kind in ("rate", "network", "fans", "temp")
    )
    return (
        "{" + _web_info(m, int(time.time()), "summary") + f',"SUMMARY":[{{"elapsed":{el},"rate_5s":{ghs:.2f},'
        f'"rate_30m":{ghs * 1.001:.2f},"rate_avg":{ghs * 0.999:.2f},"rate_ideal":{p.rate_ideal_ghs:.2f},'
        f'"rate_unit":"GH/s","hw_all":{el // 900},"bestshare":{1000000 + el * 37},"status":[{status}]}}]}}'
    )


def _web_system_info(m: Miner) -> str:
    p = m.profile
    return json.dumps(
        {
            "minertype": p.model.reported_type,
            "nettype": "DHCP",
            "netdevice": "eth0",
            "macaddr": p.mac,
            "hostname": p.hostname,
            "ipaddress": m.ip,
            "netmask": "255.0.0.0",
            "gateway": "127.0.0.1",
            "dnsservers": "127.0.0.1",
            "system_mode": "GNU/Linux",
            "system_kernel_version": "Linux 4.9.38 #1 SMP PREEMPT Fri Nov 11 15:53:43 CST 2022",
            "system_filesystem_version": p.model.firmware,
            "firmware_type": "Release",
            "serinum": m.spec.serial,
        },
        separators=(",", ":"),
    )


def _web_network_info(m: Miner) -> str:
    p = m.profile
    return json.dumps(
        {
            "nettype": "DHCP",
            "netdevice": "eth0",
            "macaddr": p.mac,
            "ipaddress": m.ip,
            "netmask": "255.0.0.0",
            "conf_nettype": "DHCP",
            "conf_hostname": p.hostname,
            "conf_ipaddress": "",
            "conf_netmask": "",
            "conf_gateway": "",
            "conf_dnsservers": "",
        },
        separators=(",", ":"),
    )


def _web_miner_conf(m: Miner) -> str:
    user = f"haven.{m.profile.hostname}"
    return json.dumps(
        {
            "pools": [
                {"url": "stratum+tcp://stratum.haven.example:3333", "user": user, "pass": "x"},
                {"url": "stratum+tcp://backup.haven.example:3333", "user": user, "pass": "x"},
                {"url": "", "user": "", "pass": ""},
            ],
            "api-listen": True,
            "api-network": True,
            "api-groups": "A:stats:pools:devs:summary:version",
            "api-allow": "A:0/0,W:*",
            "bitmain-fan-ctrl": False,
            "bitmain-fan-pwm": "100",
            "bitmain-use-vil": True,
            "bitmain-freq": str(m.profile.model.freq_mhz),
            "bitmain-voltage": "1360",
            "bitmain-ccdelay": "0",
            "bitmain-pwth": "0",
            "bitmain-work-mode": str(m.work_mode()),
            "bitmain-freq-level": "100",
        },
        separators=(",", ":"),
    )


def _web_pools(m: Miner) -> str:
    data = json.loads(pools_body(m, int(time.time()), _BM_DESC))
    return json.dumps({"STATUS": {"STATUS": "S", "Msg": "pools"}, "POOLS": data["POOLS"]}, separators=(",", ":"))


def _web_blink_status(m: Miner) -> str:
    return '{"blink":true}' if m.blink else '{"blink":false}'


# path → (builder, cacheable)
_WEB_GET: dict[str, tuple[Callable[[Miner], str], bool]] = {
    "/cgi-bin/stats.cgi": (_web_stats, False),
    "/cgi-bin/summary.cgi": (_web_summary, False),
    "/cgi-bin/get_system_info.cgi": (_web_system_info, True),
    "/cgi-bin/get_network_info.cgi": (_web_network_info, True),
    "/cgi-bin/get_miner_conf.cgi": (_web_miner_conf, False),  # its work mode changes
    "/cgi-bin/pools.cgi": (_web_pools, False),
    "/cgi-bin/get_blink_status.cgi": (_web_blink_status, False),
    "/cgi-bin/reboot.cgi": (lambda m: _reboot(m, "GET"), False),  # pyasic's reboot() is a GET
}

_HTML_PAGE = (
    b'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Antminer</title></head>\n'
    b'<body><div id="app"></div><script src="/js/app.js"></script></body></html>\n'
)


def lighttpd_error(code: int, reason: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="iso-8859-1"?>\n'
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n'
        '         "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n'
        f" <head>\n  <title>{code} - {reason}</title>\n </head>\n <body>\n  <h1>{code} - {reason}</h1>\n"
        " </body>\n</html>\n"
    ).encode()


_BODY_401 = lighttpd_error(401, "Unauthorized")
_BODY_404 = lighttpd_error(404, "Not Found")
_BODY_405 = lighttpd_error(405, "Method Not Allowed")

_NONCE_KEY = os.urandom(16)
_NONCE_TTL = 3600
_DIGEST_FIELD = re.compile(r'(\w+)=(?:"([^"]*)"|([^\s,]*))')


def _new_nonce() -> str:
    ts = f"{int(time.time()):08x}"
    return ts + hmac.new(_NONCE_KEY, ts.encode(), "md5").hexdigest()[:24]


def _nonce_ok(nonce: str) -> bool:
    if len(nonce) != 32:
        return False
    ts = nonce[:8]
    if not hmac.compare_digest(nonce[8:], hmac.new(_NONCE_KEY, ts.encode(), "md5").hexdigest()[:24]):
        return False
    try:
        return time.time() - int(ts, 16) < _NONCE_TTL
    except ValueError:
        return False


def _md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()  # noqa: S324 (HTTP Digest is MD5 by definition)


def _digest_ok(m: Miner, method: str, target: str, header: str) -> bool:
    if header[:7].lower() != "digest ":
        return False
    f = {k: (q if q else b) for k, q, b in _DIGEST_FIELD.findall(header[7:])}
    if f.get("username") != WEB_USER or f.get("realm") != WEB_REALM or f.get("uri") != target:
        return False
    if f.get("algorithm", "MD5").upper() != "MD5" or not _nonce_ok(f.get("nonce", "")):
        return False
    ha2 = _md5(f"{method}:{target}")
    qop = f.get("qop")
    if qop:
        if qop != "auth":
            return False
        expect = _md5(f"{m.ha1}:{f['nonce']}:{f.get('nc', '')}:{f.get('cnonce', '')}:{qop}:{ha2}")
    else:
        expect = _md5(f"{m.ha1}:{f['nonce']}:{ha2}")
    return hmac.compare_digest(expect, f.get("response", ""))


@dataclass(frozen=True)
class WebReply:
    """What lighttpd answers to one request: status, body and the headers that vary."""

    status: int
    body: bytes
    content_type: str = "text/html"
    headers: tuple[tuple[str, str], ...] = ()


def challenge(m: Miner, method: str, target: str, authorization: str) -> WebReply | None:
    """lighttpd's Digest challenge for a request without valid credentials (None: let it in)."""
    if authorization and _digest_ok(m, method, target, authorization):
        return None
    challenge = f'Digest realm="{WEB_REALM}", charset="UTF-8", algorithm="MD5", nonce="{_new_nonce()}", qop="auth"'
    return WebReply(401, _BODY_401, headers=(("WWW-Authenticate", challenge),))


def runs_cgi(method: str, path: str) -> bool:
    """Whether answering takes one of the firmware's CGI programs (slow, one at a time), not
    lighttpd alone (a page, an error)."""
    if method == "GET":
        return path in _WEB_GET
    return method == "POST" and path in _POSTS


def web_reply(m: Miner, method: str, path: str, body: bytes) -> WebReply:
    """The web UI's answer to an authenticated request: the cgi-bin JSON, the UI's page, or
    lighttpd's error page."""
    if method == "GET":
        route = _WEB_GET.get(path)
        if route is not None:
            fn, cacheable = route
            if cacheable:
                p = m.profile
                out = p.static.get(path)
                if out is None:
                    out = p.static[path] = fn(m).encode()
            else:
                out = fn(m).encode()
            return WebReply(200, out, "text/plain")
        if path in ("/", "/index.html"):
            return WebReply(200, _HTML_PAGE)
    elif method == "POST":
        reply = _post(m, path, body)
        if reply is not None:
            return WebReply(200, reply, "text/plain")
    else:
        return WebReply(405, _BODY_405)
    return WebReply(404, _BODY_404)  # incl. /kaonsu/v1/brief


_POSTS = frozenset(
    {"/cgi-bin/blink.cgi", "/cgi-bin/set_miner_conf.cgi", "/cgi-bin/reboot.cgi", "/cgi-bin/set_network_conf.cgi"}
)
_OK = b'{"stats":"success","code":"M000","msg":"OK!"}'


def _reboot(m: Miner, method: str) -> str:
    m.reboot("web", "reboot", {"method": method})
    return _OK.decode()


def _json_body(body: bytes) -> dict:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _post(m: Miner, path: str, body: bytes) -> bytes | None:
    params = _json_body(body)
    if path == "/cgi-bin/blink.cgi":
        on = str(params.get("blink", "false")).lower() == "true"
        m.blink = on
        m.took("web", "blink", params)
        return b'{"code":"B000"}' if on else b'{"code":"B100"}'
    if path == "/cgi-bin/set_miner_conf.cgi":
        return _set_miner_conf(m, params)
    if path == "/cgi-bin/reboot.cgi":
        return _reboot(m, "POST").encode()
    if path == "/cgi-bin/set_network_conf.cgi":
        m.took("web", "set_network_conf", params)
        return _OK
    return None


def _set_miner_conf(m: Miner, params: dict) -> bytes:
    """The whole configuration, as pyasic sends it (``MinerConfig.as_am_modern``): its "miner-mode" is
    what stops and resumes the miner — 1 sleep mode (hashboards off, fans at idle, the API up), 0
    normal. The firmware stores the rest (pools, fan control) and says "OK!" whatever it was."""
    mode = str(params.get("miner-mode", "")).strip()
    if mode == "1":
        m.stop("web", "set_miner_conf", params)
    elif mode == "0":
        m.resume("web", "set_miner_conf", params)
    else:  # no mode, or low-power mode (3), which the emulated S19s and S21 run as normal
        m.took("web", "set_miner_conf", params)
    return _OK
