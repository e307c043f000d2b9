"""Whatsminer stock firmware (btminer, API 2.0.x): the cgminer-style reads, btminer's own commands,
and its privileged (write) API as pyasic 0.79's ``BTMinerRPCAPI`` speaks it.

The privileged handshake: ``get_token`` gives a ``salt`` (the miner's own), a ``newsalt`` and a
``time``. The client derives ``host_passwd_md5`` = the hash part of md5-crypt(password, salt) and
``host_sign`` = that of md5-crypt(host_passwd_md5 + time, newsalt); it sends
``{"enc": 1, "data": base64(AES-256-ECB(json({"cmd": …, "token": host_sign, …}), zero-padded))}``
with key sha256(host_passwd_md5). The miner decrypts with its own password's key, checks the token
against those it issued (for 30 minutes, as pyasic caches them), and answers success encrypted the
same way (``{"enc": base64(…)}``) and errors in the clear — pyasic reads both. Codes as stock
btminer's: 23 a command that does not decrypt to JSON (a wrong password), 135 an unknown token,
14 a command it does not take, 45 writes disabled (``MinerSpec.privileged_api``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from passlib.handlers.md5_crypt import md5_crypt

from hosting.commissioning.emulator.antminer import pools_body
from hosting.commissioning.emulator.miner import CH_DEVS, CH_PSU, CH_WM_SUMMARY, Miner
from hosting.commissioning.emulator.noise import mix, u

_BT_DESC = "btminer"


def _bt_status(code: int, msg: str, when: int) -> str:
    return f'"STATUS":[{{"STATUS":"S","When":{when},"Code":{code},"Msg":"{msg}","Description":"{_BT_DESC}"}}]'


def _bt_msg(when: int, msg: str, code: int = 131) -> str:
    return f'{{"STATUS":"S","When":{when},"Code":{code},"Msg":{msg},"Description":""}}'


def _bt_error(when: int, msg: str, code: int = 14) -> str:
    return f'{{"STATUS":"E","When":{when},"Code":{code},"Msg":"{msg}","Description":""}}'


def _wm_summary(m: Miner, when: int) -> str:
    p = m.profile
    model = p.model
    samples = m.board_samples(CH_WM_SUMMARY)
    fans = m.fan_samples(CH_WM_SUMMARY)
    mhs = sum(s.rate_ghs for s in samples) * 1000.0
    el = m.elapsed()
    acc = el // 14
    watts = round(m.power_sample(CH_WM_SUMMARY))
    limit = round(m.limit_w) if m.limit_w is not None else model.power_limit_w
    cmin = min((min(s.chip_c) for s in samples), default=1.0) - 1.0  # the coolest chip, a little under
    cmax = max((max(s.chip_c) for s in samples), default=-2.0) + 2.0  # … and the hottest, a little over
    cavg = sum(s.chip_mean_c for s in samples) / len(samples) if samples else 0.0
    temp = max((s.pcb_mean_c for s in samples), default=0.0)
    mhs_tgt = p.rate_ideal_ghs * 1000.0 * 0.98
    return (
        "{" + _bt_status(11, "Summary", when) + f',"SUMMARY":[{{"Elapsed":{el},"MHS av":{mhs * 0.999:.2f},'
        f'"MHS 5s":{mhs * 1.003:.2f},"MHS 1m":{mhs:.2f},"MHS 5m":{mhs * 0.998:.2f},"MHS 15m":{mhs * 0.999:.2f},'
        f'"HS RT":{mhs * 0.998:.2f},"Accepted":{acc},"Rejected":{acc // 400},"Total MH":{mhs * el:.4f},'
        f'"Temperature":{temp:.2f},"freq_avg":{model.freq_mhz},"Fan Speed In":{fans[0]},"Fan Speed Out":{fans[1]},'
        f'"Power":{watts},"Power Rate":{watts / (mhs / 1e6) if mhs else 0.0:.2f},"Pool Rejected%":0.2500,'
        f'"Pool Stale%":0.0000,"Last getwork":0,"Uptime":{el + 41},"Security Mode":0,"Hash Stable":true,'
        f'"Hash Stable Cost Seconds":{min(el, 1500)},"Hash Deviation%":0.1398,"Target Freq":{model.freq_mhz},'
        f'"Target MHS":{mhs_tgt:.0f},"Env Temp":{m.air_c():.2f},"Power Mode":"Normal",'
        f'"Factory GHS":{p.rate_ideal_ghs:.0f},"Power Limit":{limit},"Chip Temp Min":{cmin:.2f},'
        f'"Chip Temp Max":{cmax:.2f},"Chip Temp Avg":{cavg:.2f},"Debug":"-0.0_100.0_354",'
        f'"Btminer Fast Boot":"disable","MAC":"{p.mac}","Firmware Version":"\'{model.firmware}\'"}}],"id":1}}'
    )


def _wm_devs(m: Miner, when: int) -> str:
    p = m.profile
    samples = m.board_samples(CH_DEVS)
    el = m.elapsed()
    rows = []
    for s in samples:  # a dead board is simply not listed
        b, mhs = s.board, s.rate_ghs * 1000.0
        rows.append(
            f'{{"ASC":{b.slot},"Slot":{b.slot},"Enabled":"Y","Status":"Alive","Temperature":{s.pcb_mean_c:.2f},'
            f'"Chip Frequency":{p.model.freq_mhz},"MHS av":{mhs * 0.999:.2f},"MHS 5s":{mhs * 1.004:.2f},'
            f'"MHS 1m":{mhs:.2f},"MHS 5m":{mhs * 0.998:.2f},"MHS 15m":{mhs * 0.999:.2f},"HS RT":{mhs * 0.998:.2f},'
            f'"Accepted":{el // 42},"Rejected":0,"Last Valid Work":{when - 2},"Upfreq Complete":1,'
            f'"Effective Chips":{b.chips},"PCB SN":"{b.sn}","Chip Data":"K88Z347-2039 BINV01-195001D",'
            f'"Chip Temp Min":{min(s.chip_c) - 1:.2f},"Chip Temp Max":{max(s.chip_c) + 2:.2f},'
            f'"Chip Temp Avg":{s.chip_mean_c:.2f},"chip_vol_diff":9}}'
        )
    return "{" + _bt_status(9, f"{len(rows)} ASC(s)", when) + ',"DEVS":[' + ",".join(rows) + '],"id":1}'


def _wm_pools(m: Miner, when: int) -> str:
    return pools_body(m, when, _BT_DESC)


def _wm_devdetails(m: Miner, when: int) -> str:
    model = m.profile.model.reported_type
    rows = ",".join(
        f'{{"DEVDETAILS":{b.slot},"Name":"SM","ID":{b.slot},"Driver":"bitmicro","Kernel":"","Model":"{model}"}}'
        for b in m.profile.present
    )
    return "{" + _bt_status(69, "Device Details", when) + ',"DEVDETAILS":[' + rows + '],"id":1}'


def _wm_version(m: Miner, when: int) -> str:
    return "{" + _bt_status(22, "CGMiner versions", when) + ',"VERSION":[{"CGMiner":"4.9.2","API":"3.7"}],"id":1}'


def _wm_get_version(m: Miner, when: int) -> str:
    fw = m.profile.model.firmware
    return _bt_msg(when, f'{{"api_ver":"2.0.5","fw_ver":"{fw}","platform":"H6OS","chip":"K1.5"}}')


def _wm_get_miner_info(m: Miner, when: int) -> str:
    p = m.profile
    msg = json.dumps(
        {
            "ip": m.ip,
            "proto": "dhcp",
            "netmask": "255.0.0.0",
            "gateway": "127.0.0.1",
            "dns": "127.0.0.1",
            "hostname": p.hostname,
            "mac": p.mac,
            "ledstat": "manual" if m.blink else "auto",
            "minersn": m.spec.serial,
            "powersn": f"P{m.spec.serial[-12:]}",
        },
        separators=(",", ":"),
    )
    return _bt_msg(when, msg)


def _wm_get_psu(m: Miner, when: int) -> str:
    watts = m.power_sample(CH_PSU)
    fan = 6900 + round(60 * u(m.seed, m.tick(CH_PSU) << 4))
    msg = (
        f'{{"name":"{m.profile.model.psu_model}","hw_version":"V01.00","sw_version":"V01.00.V01.03",'
        f'"model":"{m.profile.model.psu_model}","iin":"{round(watts / 0.23):d}","vin":"23000",'
        f'"fan_speed":"{fan}","version":"-1","serial_no":"A{m.spec.serial[-14:]}","vender":"7"}}'
    )
    return _bt_msg(when, msg)


def _wm_get_error_code(m: Miner, when: int) -> str:
    t0 = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(when - m.elapsed() + 120))
    codes = ",".join(f'{{"{c}":"{t0}"}}' for c in m.profile.errors_wm)
    return _bt_msg(when, f'{{"error_code":[{codes}]}}', 133)


def _wm_status(m: Miner, when: int) -> str:
    fw = m.profile.model.firmware
    off, reason, since = "false", "", ""
    if m.asleep:
        off, reason = "true", "API power_off"
        stopped = next((c for c in reversed(m.commands) if c.command == "power_off" and c.outcome == "done"), None)
        if stopped is not None:
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(m.fleet.clock.wall_s(stopped.at_s)))
    return _bt_msg(
        when,
        f'{{"mineroff":"{off}","mineroff_reason":"{reason}","mineroff_time":"{since}","FirmwareVersion":"\'{fw}\'",'
        f'"power_mode":"","hash_percent":""}}',
    )


# --------------------------------------------------------------------------------------------
# The privileged API
# --------------------------------------------------------------------------------------------

_SALT_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
TOKEN_TTL_S = 1800.0 + 300.0  # pyasic reuses a token for 30 minutes


def _salt(h: int) -> str:
    return "".join(_SALT_ALPHABET[(h >> (6 * i)) % 62] for i in range(8))


@lru_cache(maxsize=4096)
def _crypt_part(word: str, salt: str) -> str:
    """The hash part of md5-crypt(word, salt): what btminer (and pyasic's ``_crypt``) keep of it."""
    return md5_crypt.using(salt=salt).hash(word).split("$")[3]


def _aes(host_passwd_md5: str) -> Cipher:
    return Cipher(algorithms.AES(hashlib.sha256(host_passwd_md5.encode()).digest()), modes.ECB())  # noqa: S305 (btminer's)


def _wm_get_token(m: Miner, when: int) -> str:
    salt = _salt(mix(m.seed ^ 0x5A17))  # the miner's own: its key does not change
    newsalt = _salt(mix(m.seed ^ mix(when)))
    stamp = f"{when % 10000:04d}"
    if m.spec.privileged_api:
        sign = _crypt_part(_crypt_part(m.spec.rpc_password, salt) + stamp, newsalt)
        now = time.time()
        m.tokens = {s: at for s, at in m.tokens.items() if now - at < TOKEN_TTL_S}
        m.tokens[sign] = now
    return _bt_msg(when, f'{{"time":"{stamp}","salt":"{salt}","newsalt":"{newsalt}"}}', 134)


def _decrypt(m: Miner, data: object) -> dict | None:
    host_passwd_md5 = _crypt_part(m.spec.rpc_password, _salt(mix(m.seed ^ 0x5A17)))
    try:
        raw = base64.b64decode(str(data))
        dec = _aes(host_passwd_md5).decryptor()
        cmd = json.loads((dec.update(raw) + dec.finalize()).rstrip(b"\0").decode())
    except (ValueError, UnicodeDecodeError):
        return None
    return cmd if isinstance(cmd, dict) else None


def _encrypt(m: Miner, reply: str) -> str:
    host_passwd_md5 = _crypt_part(m.spec.rpc_password, _salt(mix(m.seed ^ 0x5A17)))
    raw = reply.encode()
    raw += b"\0" * (-len(raw) % 16)
    enc = _aes(host_passwd_md5).encryptor()
    return json.dumps({"enc": base64.b64encode(enc.update(raw) + enc.finalize()).decode()})


def _privileged(m: Miner, request: dict, when: int) -> str:
    """btminer's answer to an encrypted write command."""
    if not m.spec.privileged_api:
        m.refused("rpc", "(encrypted)", {})
        return _bt_error(when, "can't access write cmd", 45)
    cmd = _decrypt(m, request.get("data"))
    if cmd is None:
        m.refused("rpc", "(undecryptable)", {})
        return _bt_error(when, "json cmd err", 23)
    name = str(cmd.get("cmd", ""))
    params = {k: v for k, v in cmd.items() if k not in ("cmd", "token")}
    issued = m.tokens.get(str(cmd.get("token", "")))
    if issued is None or time.time() - issued >= TOKEN_TTL_S:
        m.refused("rpc", name, params)
        return _bt_error(when, "check token err", 135)
    write = _WRITES.get(name)
    if write is None:
        m.refused("rpc", name, params)
        return _bt_error(when, "invalid cmd")
    reply = write(m, name, params, when)
    return _encrypt(m, reply) if '"STATUS":"S"' in reply else reply


_OK = '"API command OK"'


def _w_power_off(m: Miner, name: str, params: dict, when: int) -> str:
    m.stop("rpc", name, params)  # respbefore: answered first either way
    return _bt_msg(when, _OK)


def _w_power_on(m: Miner, name: str, params: dict, when: int) -> str:
    m.resume("rpc", name, params)
    return _bt_msg(when, _OK)


def _w_adjust_power_limit(m: Miner, name: str, params: dict, when: int) -> str:
    try:
        watts = int(str(params.get("power_limit", "")))
    except ValueError:
        m.refused("rpc", name, params)
        return _bt_error(when, "invalid cmd")
    c = m.set_power_limit(watts, "rpc", name, params)
    if c.outcome != "done":
        model = m.base.model
        return _bt_error(when, f"power limit out of range {model.power_limit_min_w}-{model.power_limit_w}", 132)
    return _bt_msg(when, _OK)


def _w_reboot(m: Miner, name: str, params: dict, when: int) -> str:
    m.reboot("rpc", name, params)
    return _bt_msg(when, _OK)


def _w_set_led(m: Miner, name: str, params: dict, when: int) -> str:
    m.blink = params.get("param") != "auto"
    m.took("rpc", name, params)
    return _bt_msg(when, _OK)


def _w_update_pools(m: Miner, name: str, params: dict, when: int) -> str:
    m.took("rpc", name, params)
    return _bt_msg(when, _OK)


# The writes pyasic's stop_mining, resume_mining, set_power_limit, reboot, fault_light_* and
# send_config's pools send; any other is refused "invalid cmd" (and recorded).
_WRITES: dict[str, Callable[[Miner, str, dict, int], str]] = {
    "power_off": _w_power_off,
    "power_on": _w_power_on,
    "adjust_power_limit": _w_adjust_power_limit,
    "reboot": _w_reboot,
    "set_led": _w_set_led,
    "update_pools": _w_update_pools,
}


_WM_RPC: dict[str, Callable[[Miner, int], str]] = {
    "summary": _wm_summary,
    "devs": _wm_devs,
    "edevs": _wm_devs,
    "pools": _wm_pools,
    "devdetails": _wm_devdetails,
    "version": _wm_version,
    "get_version": _wm_get_version,
    "get_miner_info": _wm_get_miner_info,
    "get_psu": _wm_get_psu,
    "get_error_code": _wm_get_error_code,
    "status": _wm_status,
    "get_token": _wm_get_token,
}
# btminer joins the cgminer-style reads with "+"; its own get_*/status commands are not joinable.
_WM_JOINABLE = frozenset({"summary", "devs", "edevs", "pools", "devdetails", "version"})


def rpc_reply(m: Miner, request: object, command: str | None, when: int) -> str:
    """btminer's answer to one request: a command, or cgminer-style reads joined with "+"."""
    if command is None:
        if isinstance(request, dict) and "enc" in request:  # an encrypted (privileged) command
            return _privileged(m, request, when)
        return _bt_error(when, "invalid cmd")
    if "+" in command:
        cmds = command.split("+")
        if all(c in _WM_JOINABLE for c in cmds):
            return "{" + ",".join(f'"{c}":[{_WM_RPC[c](m, when)}]' for c in cmds) + ',"id":1}'
        return _bt_error(when, "invalid cmd")
    fn = _WM_RPC.get(command)
    return fn(m, when) if fn is not None else _bt_error(when, "invalid cmd")
