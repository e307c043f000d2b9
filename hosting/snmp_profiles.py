"""SNMP OID profiles of the metered PDUs Haven reads, shared by the emulated PDU agent and the probe.

Each profile maps a measurement name to ``(oid_template, scale)``: the template takes ``{outlet}``
where the measurement is per outlet, and ``value_in_unit = raw_integer * scale``. The other keys of a
profile are knobs, not measurements (``MEASUREMENTS`` lists the measurement keys).

Where the OIDs come from (checked against several independent public users of each MIB — NMS
discovery code (Observium, LibreNMS, Centreon, NUT) and monitoring templates — not against the
vendors' MIB files themselves, which are not reachable from here):

* ``apc-rpdu2`` — APC/Schneider PowerNet-MIB, rPDU2 branch (1.3.6.1.4.1.318.1.1.26):

  - rPDU2OutletMeteredStatusPower   .26.9.4.3.1.7.{outlet}  INTEGER, watts
  - rPDU2OutletMeteredStatusCurrent .26.9.4.3.1.6.{outlet}  INTEGER, tenths of amperes
  - rPDU2DeviceStatusPower          .26.4.3.1.5.1           INTEGER, hundredths of kilowatts (10 W)
  - rPDU2SensorTempHumidityStatusTempC .26.10.2.2.1.8.1     INTEGER, tenths of °C

  The outlet index is the row of rPDU2OutletMeteredStatusTable, which is the outlet number on
  unit 1 of a daisy chain (unit 2's outlets follow on in the same table).

* ``raritan-px2`` — Raritan PDU2-MIB (1.3.6.1.4.1.13742.6), measurements tables indexed
  ``{pduId}.{inlet|outlet|sensor}.{sensorType}`` with sensorType rmsCurrent(1), activePower(5):

  - measurementsOutletSensorValue .6.5.4.3.1.4.1.{outlet}.5  Unsigned32, watts
  - measurementsOutletSensorValue .6.5.4.3.1.4.1.{outlet}.1  Unsigned32, amperes × 10^-digits
  - measurementsInletSensorValue  .6.5.2.3.1.4.1.1.5         Unsigned32, watts (inlet 1 = device)
  - measurementsExternalSensorValue .6.5.5.3.1.4.1.1         Unsigned32, °C × 10^-digits

  A real PX2 publishes the number of decimal digits of every sensor (outletSensorDecimalDigits
  .6.3.5.4.1.7, inletSensorDecimalDigits .6.3.3.4.1.7, externalSensorDecimalDigits .6.3.6.3.1.17);
  this profile fixes them at 1 for current and temperature and 0 for power (what NUT's
  raritan-px2 mapping assumes) and the emulated agent serves those digits so a reader that honours
  them gets the same scale. Treat the digit counts as this profile's convention, not a guarantee
  about every Raritan firmware.
"""

from __future__ import annotations

MEASUREMENTS = ("outlet_power_w", "outlet_current_a", "device_power_w", "inlet_temp_c")

PROFILES: dict[str, dict] = {
    "apc-rpdu2": {
        "vendor": "APC",
        "description": "APC Rack PDU 2G, metered-by-outlet (PowerNet-MIB rPDU2)",
        "nominal_volts": 230.0,
        # SMI syntax of the measurement values as the agent sends them.
        "syntax": "Integer32",
        "outlet_power_w": ("1.3.6.1.4.1.318.1.1.26.9.4.3.1.7.{outlet}", 1.0),
        "outlet_current_a": ("1.3.6.1.4.1.318.1.1.26.9.4.3.1.6.{outlet}", 0.1),
        "device_power_w": ("1.3.6.1.4.1.318.1.1.26.4.3.1.5.1", 10.0),
        "inlet_temp_c": ("1.3.6.1.4.1.318.1.1.26.10.2.2.1.8.1", 0.1),
        # Extra constant objects the agent serves (OID → value), e.g. for walks.
        "static": {},
    },
    "raritan-px2": {
        "vendor": "Raritan",
        "description": "Raritan PX2 intelligent PDU (PDU2-MIB)",
        "nominal_volts": 230.0,
        "syntax": "Gauge32",
        "outlet_power_w": ("1.3.6.1.4.1.13742.6.5.4.3.1.4.1.{outlet}.5", 1.0),
        "outlet_current_a": ("1.3.6.1.4.1.13742.6.5.4.3.1.4.1.{outlet}.1", 0.1),
        "device_power_w": ("1.3.6.1.4.1.13742.6.5.2.3.1.4.1.1.5", 1.0),
        "inlet_temp_c": ("1.3.6.1.4.1.13742.6.5.5.3.1.4.1.1", 0.1),
        "static": {
            # inletSensorDecimalDigits.1.1.activePower = 0
            "1.3.6.1.4.1.13742.6.3.3.4.1.7.1.1.5": 0,
            # externalSensorDecimalDigits.1.1 = 1
            "1.3.6.1.4.1.13742.6.3.6.3.1.17.1.1": 1,
        },
        # Per-outlet constants: outletSensorDecimalDigits.1.{outlet}.rmsCurrent / .activePower
        "static_per_outlet": {
            "1.3.6.1.4.1.13742.6.3.5.4.1.7.1.{outlet}.1": 1,
            "1.3.6.1.4.1.13742.6.3.5.4.1.7.1.{outlet}.5": 0,
        },
    },
}


def oid(profile: str, measurement: str, outlet: int | None = None) -> tuple[str, float]:
    """The OID (dotted, no leading dot) and scale of one measurement of a profile.

    ``outlet`` is required for the per-outlet measurements and ignored otherwise.
    """
    try:
        prof = PROFILES[profile]
    except KeyError:
        raise KeyError(f"unknown SNMP profile {profile!r}; known: {sorted(PROFILES)}") from None
    if measurement not in MEASUREMENTS:
        raise KeyError(f"unknown measurement {measurement!r}; known: {MEASUREMENTS}")
    template, scale = prof[measurement]
    if "{outlet}" in template:
        if outlet is None:
            raise ValueError(f"{measurement} is per outlet: pass outlet=")
        if int(outlet) < 1:
            raise ValueError("outlets are numbered from 1")
        template = template.format(outlet=int(outlet))
    return template, scale
