"""The emulated models: the catalog's models (`hosting/catalog.py`: rated figures, counts, names) with what
each one's stock firmware reports and how pyasic 0.79 names it."""

from __future__ import annotations

from dataclasses import dataclass

from hosting import catalog


@dataclass(frozen=True)
class EmulatedModel:
    """A catalog model as its stock firmware reports it, and as pyasic 0.79 then names it."""

    slug: str
    vendor: str  # "bitmain" | "microbt" (the catalog's vendor slugs)
    name: str
    hashrate_ths: float
    power_w: int
    boards: int
    chips_per_board: int
    fans: int
    # What the firmware reports: Antminer ``minertype``/``Type``; Whatsminer DEVDETAILS ``Model``.
    reported_type: str
    # Antminer: bmminer ``CompileTime`` (pyasic's fw_ver); Whatsminer: ``fw_ver`` of get_version.
    firmware: str
    # ``str(miner.make)`` / ``MinerData.make`` and ``MinerData.model`` (== ``miner.raw_model``);
    # ``miner.model`` appends the firmware: ``f"{pyasic_model} (Stock)"``.
    pyasic_make: str
    pyasic_model: str
    pyasic_class: str  # type(miner).__name__ of what pyasic.get_miner returns
    impostor: str  # slug of the model this one claims to be under the wrong_model fault
    freq_mhz: int = 650
    power_limit_w: int = 0  # Whatsminer "Power Limit": the most adjust_power_limit accepts
    power_limit_min_w: int = 0  # … and the least (0: the firmware has no power limit)
    psu_model: str = ""  # Whatsminer PSU
    # What the firmware does over time (see miner.Miner): asleep (Antminer sleep mode, Whatsminer
    # power_off) it draws a few tens of watts with fans at idle; woken (or booted, or re-limited)
    # it is back at full rate after `ramp_s`; a reboot keeps it off the network for `boot_s`.
    sleep_w: float = 36.0
    idle_fan_rpm: int = 1100
    ramp_s: float = 50.0
    boot_s: float = 75.0

    @property
    def pyasic_model_label(self) -> str:
        """``miner.model`` of the object ``pyasic.get_miner`` returns."""
        return f"{self.pyasic_model} (Stock)"

    @property
    def is_antminer(self) -> bool:
        return self.vendor == "bitmain"


# What the catalog does not say: each model's stock firmware as it answers, and how pyasic names it.
# Rated figures (hash rate, watts, boards, chips, fans) and names come from `hosting/catalog.py`.
_PYASIC_MAKE = {"bitmain": "AntMiner", "microbt": "WhatsMiner"}
# Each vendor's firmware over time: its sleep draw (control board, PSU standby, fans at idle), idle fan
# speed, ramp back to full rate, and boot time.
_VENDOR: dict[str, dict] = {
    "bitmain": {"sleep_w": 36.0, "idle_fan_rpm": 1100, "ramp_s": 50.0, "boot_s": 75.0},
    "microbt": {"sleep_w": 42.0, "idle_fan_rpm": 1300, "ramp_s": 35.0, "boot_s": 60.0},
}
_FIRMWARE: dict[str, dict] = {
    "antminer-s19": {
        "reported_type": "Antminer S19",
        "firmware": "Mon Nov 14 13:34:21 CST 2022",
        "pyasic_class": "BMMinerS19",
        "impostor": "antminer-s19-pro",
        "freq_mhz": 650,
    },
    "antminer-s19-pro": {
        "reported_type": "Antminer S19 Pro",
        "firmware": "Mon Nov 14 13:34:21 CST 2022",
        "pyasic_class": "BMMinerS19Pro",
        "impostor": "antminer-s19j-pro",
        "freq_mhz": 675,
    },
    "antminer-s19j-pro": {
        "reported_type": "Antminer S19j Pro",
        "firmware": "Thu Apr 27 15:22:41 CST 2023",
        "pyasic_class": "BMMinerS19jPro",
        "impostor": "antminer-s19-pro",
        "freq_mhz": 525,
    },
    "antminer-s19-xp": {
        "reported_type": "Antminer S19 XP",
        "firmware": "Tue Jun 20 10:03:16 CST 2023",
        "pyasic_class": "BMMinerS19XP",
        "impostor": "antminer-s19-pro",
        "freq_mhz": 540,
    },
    "antminer-s21": {
        "reported_type": "Antminer S21",
        "firmware": "Fri Nov 24 16:33:21 CST 2023",
        "pyasic_class": "BMMinerS21",
        "impostor": "antminer-s19-xp",
        "freq_mhz": 490,
    },
    "whatsminer-m30s-plus-plus": {
        # DEVDETAILS "Model": pyasic drops "_" and zeroes the last digit → "M30S++VG40".
        "reported_type": "M30S++_VG40",
        # get_version fw_ver: a date before 2024-11 makes pyasic pick its v2 API (BTMinerV2).
        "firmware": "20230911.22.REL",
        "pyasic_class": "BTMinerM30SPlusPlusVG40",
        "impostor": "whatsminer-m50",
        "freq_mhz": 590,
        "power_limit_w": 3600,
        "power_limit_min_w": 1700,
        "psu_model": "P221B",
    },
    "whatsminer-m50": {
        "reported_type": "M50_VH50",
        "firmware": "20240105.12.REL",
        "pyasic_class": "BTMinerM50VH50",
        "impostor": "whatsminer-m30s-plus-plus",
        "freq_mhz": 590,
        "power_limit_w": 3500,
        "power_limit_min_w": 1650,
        "psu_model": "P222B",
    },
}


def _from_catalog(row: dict) -> EmulatedModel:
    """One catalog row (`catalog.MACHINE_MODELS`) as its firmware reports it."""
    return EmulatedModel(
        slug=row["slug"],
        vendor=row["vendor"],
        name=row["name"],
        hashrate_ths=float(row["nominal_hashrate_ths"]),
        power_w=int(row["nameplate_power_w"]),
        boards=row["hashboards"],
        chips_per_board=row["chips_per_board"],
        fans=row["fans"],
        pyasic_make=_PYASIC_MAKE[row["vendor"]],
        pyasic_model=row["pyasic_model"],
        **_VENDOR[row["vendor"]],
        **_FIRMWARE[row["slug"]],
    )


def emulated_models(rows: list[dict]) -> dict[str, EmulatedModel]:
    """The catalog's rows whose firmware the emulator knows, by slug."""
    return {row["slug"]: _from_catalog(row) for row in rows if row["slug"] in _FIRMWARE}


EMULATED_MODELS: dict[str, EmulatedModel] = emulated_models(catalog.MACHINE_MODELS)
