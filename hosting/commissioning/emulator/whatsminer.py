"""Whatsminer stock firmware (btminer, API 2.0.x): the cgminer-style reads and btminer's own commands."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

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
        f'"Power":{watts},"Power Rate":{watts / max(mhs / 1e6, 0.001):.2f},"Pool Rejected%":0.2500,'
        f'"Pool Stale%":0.0000,"Last getwork":0,"Uptime":{el + 41},"Security Mode":0,"Hash Stable":true,'
        f'"Hash Stable Cost Seconds":{min(el, 1500)},"Hash Deviation%":0.1398,"Target Freq":{model.freq_mhz},'
        f'"Target MHS":{mhs_tgt:.0f},"Env Temp":{m.spec.inlet_temp_c:.2f},"Power Mode":"Normal",'
        f'"Factory GHS":{p.rate_ideal_ghs:.0f},"Power Limit":{model.power_limit_w},"Chip Temp Min":{cmin:.2f},'
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
    return _bt_msg(
        when,
        f'{{"mineroff":"false","mineroff_reason":"","mineroff_time":"","FirmwareVersion":"\'{fw}\'",'
        f'"power_mode":"","hash_percent":""}}',
    )


def _wm_get_token(m: Miner, when: int) -> str:
    h = mix(m.seed ^ (when // 1800))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    salt = "".join(alphabet[(h >> (6 * i)) % 62] for i in range(8))
    newsalt = "".join(alphabet[(h >> (6 * i + 3)) % 62] for i in range(8))
    return _bt_msg(when, f'{{"time":"{when % 10000:04d}","salt":"{salt}","newsalt":"{newsalt}"}}', 134)


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
            return _bt_error(when, "can't access write cmd", 45)
        return _bt_error(when, "invalid cmd")
    if "+" in command:
        cmds = command.split("+")
        if all(c in _WM_JOINABLE for c in cmds):
            return "{" + ",".join(f'"{c}":[{_WM_RPC[c](m, when)}]' for c in cmds) + ',"id":1}'
        return _bt_error(when, "invalid cmd")
    fn = _WM_RPC.get(command)
    return fn(m, when) if fn is not None else _bt_error(when, "invalid cmd")
