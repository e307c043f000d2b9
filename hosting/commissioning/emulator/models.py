"""The emulated models: what each catalog model's stock firmware reports, and how pyasic 0.79 names it."""

from __future__ import annotations

from dataclasses import dataclass


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
    power_limit_w: int = 0  # Whatsminer "Power Limit"
    psu_model: str = ""  # Whatsminer PSU

    @property
    def pyasic_model_label(self) -> str:
        """``miner.model`` of the object ``pyasic.get_miner`` returns."""
        return f"{self.pyasic_model} (Stock)"

    @property
    def is_antminer(self) -> bool:
        return self.vendor == "bitmain"


_ANTMINER = {"vendor": "bitmain", "boards": 3, "fans": 4, "pyasic_make": "AntMiner"}
_WHATSMINER = {"vendor": "microbt", "boards": 3, "fans": 2, "pyasic_make": "WhatsMiner", "freq_mhz": 590}

EMULATED_MODELS: dict[str, EmulatedModel] = {
    m.slug: m
    for m in (
        EmulatedModel(
            **_ANTMINER,
            slug="antminer-s19",
            name="Antminer S19",
            hashrate_ths=95,
            power_w=3250,
            chips_per_board=76,
            reported_type="Antminer S19",
            firmware="Mon Nov 14 13:34:21 CST 2022",
            pyasic_model="S19",
            pyasic_class="BMMinerS19",
            impostor="antminer-s19-pro",
            freq_mhz=650,
        ),
        EmulatedModel(
            **_ANTMINER,
            slug="antminer-s19-pro",
            name="Antminer S19 Pro",
            hashrate_ths=110,
            power_w=3250,
            chips_per_board=114,
            reported_type="Antminer S19 Pro",
            firmware="Mon Nov 14 13:34:21 CST 2022",
            pyasic_model="S19 Pro",
            pyasic_class="BMMinerS19Pro",
            impostor="antminer-s19j-pro",
            freq_mhz=675,
        ),
        EmulatedModel(
            **_ANTMINER,
            slug="antminer-s19j-pro",
            name="Antminer S19j Pro",
            hashrate_ths=104,
            power_w=3068,
            chips_per_board=126,
            reported_type="Antminer S19j Pro",
            firmware="Thu Apr 27 15:22:41 CST 2023",
            pyasic_model="S19j Pro",
            pyasic_class="BMMinerS19jPro",
            impostor="antminer-s19-pro",
            freq_mhz=525,
        ),
        EmulatedModel(
            **_ANTMINER,
            slug="antminer-s19-xp",
            name="Antminer S19 XP",
            hashrate_ths=140,
            power_w=3010,
            chips_per_board=110,
            reported_type="Antminer S19 XP",
            firmware="Tue Jun 20 10:03:16 CST 2023",
            pyasic_model="S19 XP",
            pyasic_class="BMMinerS19XP",
            impostor="antminer-s19-pro",
            freq_mhz=540,
        ),
        EmulatedModel(
            **_ANTMINER,
            slug="antminer-s21",
            name="Antminer S21",
            hashrate_ths=200,
            power_w=3500,
            chips_per_board=108,
            reported_type="Antminer S21",
            firmware="Fri Nov 24 16:33:21 CST 2023",
            pyasic_model="S21",
            pyasic_class="BMMinerS21",
            impostor="antminer-s19-xp",
            freq_mhz=490,
        ),
        EmulatedModel(
            **_WHATSMINER,
            slug="whatsminer-m30s-plus-plus",
            name="Whatsminer M30S++",
            hashrate_ths=112,
            power_w=3472,
            chips_per_board=117,
            # DEVDETAILS "Model": pyasic drops "_" and zeroes the last digit → "M30S++VG40".
            reported_type="M30S++_VG40",
            # get_version fw_ver: a date before 2024-11 makes pyasic pick its v2 API (BTMinerV2).
            firmware="20230911.22.REL",
            pyasic_model="M30S++ VG40",
            pyasic_class="BTMinerM30SPlusPlusVG40",
            impostor="whatsminer-m50",
            power_limit_w=3600,
            psu_model="P221B",
        ),
        EmulatedModel(
            **_WHATSMINER,
            slug="whatsminer-m50",
            name="Whatsminer M50",
            hashrate_ths=114,
            power_w=3306,
            chips_per_board=105,
            reported_type="M50_VH50",
            firmware="20240105.12.REL",
            pyasic_model="M50 VH50",
            pyasic_class="BTMinerM50VH50",
            impostor="whatsminer-m30s-plus-plus",
            power_limit_w=3500,
            psu_model="P222B",
        ),
    )
}
