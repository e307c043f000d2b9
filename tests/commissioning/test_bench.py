"""`make bench`'s CPU meter: where the machine's CPU went during a phase (Linux /proc)."""

import os
import signal
import subprocess
import sys

import pytest

from hosting import benchmark

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs Linux /proc")

# Burn one CPU second, say so, then idle (the group's process) or end (the child).
SPIN = "import time\nend = time.process_time() + 1\nwhile time.process_time() < end: pass\nprint('done', flush=True)\n"


def test_the_cpu_meter_charges_a_busy_process_group_and_the_children_waited_for():
    spinner = subprocess.Popen(
        [sys.executable, "-c", SPIN + "time.sleep(60)"], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        with benchmark.CpuMeter({"spinner": spinner.pid}, children="child") as meter:
            assert spinner.stdout.readline() == "done\n"
            subprocess.run([sys.executable, "-c", SPIN], check=True, capture_output=True)
    finally:
        os.killpg(spinner.pid, signal.SIGKILL)
        spinner.wait()
    figures = meter.figures
    assert set(figures) == {"busy_pct", "spinner_pct", "child_pct"}
    assert figures["spinner_pct"] > 0
    assert figures["child_pct"] > 0
    assert figures["spinner_pct"] + figures["child_pct"] <= figures["busy_pct"] + 2  # part of the machine's
    assert meter.summary().startswith(f"CPU {figures['busy_pct']:.0f} % busy (spinner ")
