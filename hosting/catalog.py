"""The machine catalog Haven ships with: real models and where each figure comes from.

Hash rate and wall power are the vendors' stock-firmware ratings; hashboards, chips per
board and fans are the counts pyasic (0.79) expects of the same model when it reads a
miner, and `pyasic_model` the model name it reports, so commissioning compares like with
like. `max_chip_temp_c` is Haven's default
commissioning limit, a few degrees under the firmware's own over-temperature cut-off;
staff may tighten it per model.
"""

from decimal import Decimal

PYASIC = "pyasic 0.79 device model {cls}: {boards} hashboards × {chips} chips, {fans} fans"

MACHINE_MODELS = [
    {
        "slug": "antminer-s19",
        "pyasic_model": "S19",
        "vendor": "bitmain",
        "name": "Antminer S19",
        "nominal_hashrate_ths": Decimal("95"),
        "nameplate_power_w": 3250,
        "hashboards": 3,
        "chips_per_board": 76,
        "fans": 4,
        "max_chip_temp_c": Decimal("95"),
        "source": "Bitmain S19 spec sheet (2020): 95 TH/s ±3 %, 3,250 W ±5 % at the wall; "
        + PYASIC.format(cls="S19", boards=3, chips=76, fans=4),
    },
    {
        "slug": "antminer-s19-pro",
        "pyasic_model": "S19 Pro",
        "vendor": "bitmain",
        "name": "Antminer S19 Pro",
        "nominal_hashrate_ths": Decimal("110"),
        "nameplate_power_w": 3250,
        "hashboards": 3,
        "chips_per_board": 114,
        "fans": 4,
        "max_chip_temp_c": Decimal("95"),
        "source": "Bitmain S19 Pro spec sheet (Feb 2020): 110 TH/s ±3 %, 3,250 W ±5 %; "
        + PYASIC.format(cls="S19Pro", boards=3, chips=114, fans=4),
    },
    {
        "slug": "antminer-s19j-pro",
        "pyasic_model": "S19j Pro",
        "vendor": "bitmain",
        "name": "Antminer S19j Pro",
        "nominal_hashrate_ths": Decimal("104"),
        "nameplate_power_w": 3068,
        "hashboards": 3,
        "chips_per_board": 126,
        "fans": 4,
        "max_chip_temp_c": Decimal("95"),
        "source": "Bitmain S19j Pro 104T spec sheet (2021): 104 TH/s, 3,068 W (batches rated 3,068–3,082 W); "
        + PYASIC.format(cls="S19jPro", boards=3, chips=126, fans=4),
    },
    {
        "slug": "antminer-s19-xp",
        "pyasic_model": "S19 XP",
        "vendor": "bitmain",
        "name": "Antminer S19 XP",
        "nominal_hashrate_ths": Decimal("140"),
        "nameplate_power_w": 3010,
        "hashboards": 3,
        "chips_per_board": 110,
        "fans": 4,
        "max_chip_temp_c": Decimal("95"),
        "source": "Bitmain S19 XP spec sheet (2022): 140 TH/s, 3,010 W (21.5 J/TH); "
        + PYASIC.format(cls="S19XP", boards=3, chips=110, fans=4),
    },
    {
        "slug": "antminer-s21",
        "pyasic_model": "S21",
        "vendor": "bitmain",
        "name": "Antminer S21",
        "nominal_hashrate_ths": Decimal("200"),
        "nameplate_power_w": 3500,
        "hashboards": 3,
        "chips_per_board": 108,
        "fans": 4,
        "max_chip_temp_c": Decimal("95"),
        "source": "Bitmain S21 spec sheet (2023): 200 TH/s, 17.5 J/TH = 3,500 W; "
        + PYASIC.format(cls="S21", boards=3, chips=108, fans=4),
    },
    {
        "slug": "whatsminer-m30s-plus-plus",
        "pyasic_model": "M30S++ VG40",
        "vendor": "microbt",
        "name": "Whatsminer M30S++",
        "nominal_hashrate_ths": Decimal("112"),
        "nameplate_power_w": 3472,
        "hashboards": 3,
        "chips_per_board": 117,
        "fans": 2,
        "max_chip_temp_c": Decimal("95"),
        "source": "MicroBT M30S++ spec (2020): 112 TH/s at 31 J/TH = 3,472 W; chip count varies by hashboard "
        "variant, seeded with VG40: " + PYASIC.format(cls="M30SPlusPlusVG40", boards=3, chips=117, fans=2),
    },
    {
        "slug": "whatsminer-m50",
        "pyasic_model": "M50 VH50",
        "vendor": "microbt",
        "name": "Whatsminer M50",
        "nominal_hashrate_ths": Decimal("114"),
        "nameplate_power_w": 3306,
        "hashboards": 3,
        "chips_per_board": 105,
        "fans": 2,
        "max_chip_temp_c": Decimal("95"),
        "source": "MicroBT M50 spec (2022): 114 TH/s at 29 J/TH ≈ 3,306 W; chip count varies by hashboard "
        "variant, seeded with VH50: " + PYASIC.format(cls="M50VH50", boards=3, chips=105, fans=2),
    },
    {
        "slug": "avalon-a1246",
        "pyasic_model": "Avalon 1246",
        "vendor": "canaan",
        "name": "Avalon A1246",
        "nominal_hashrate_ths": Decimal("90"),
        "nameplate_power_w": 3420,
        "hashboards": 3,
        "chips_per_board": 120,
        "fans": 4,
        "max_chip_temp_c": Decimal("95"),
        "source": "Canaan A1246 spec (2021): 90 TH/s, 3,420 W (38 J/TH); "
        + PYASIC.format(cls="Avalon1246", boards=3, chips=120, fans=4),
    },
]


def load(machine_model_class) -> None:
    """Create or update the catalog's entries (by slug); other models are left alone.

    Takes the model class a migration gives it, so only the fields that class has are set.
    """
    known = {f.name for f in machine_model_class._meta.get_fields()}
    for entry in MACHINE_MODELS:
        fields = {k: v for k, v in entry.items() if k != "slug" and k in known}
        machine_model_class.objects.update_or_create(slug=entry["slug"], defaults=fields)
