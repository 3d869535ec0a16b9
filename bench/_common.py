"""Helpers shared by the bench modules."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Source of ``_peak_kib()`` for the child scripts that measure peak memory. VmHWM is per address
# space, so it starts afresh at exec; ru_maxrss would carry the parent's peak over fork + exec
# and report the benchmark harness, not the child.
PEAK_KIB_SOURCE = """
def _peak_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
"""


def commit() -> str:
    """Short hash of the checked-out commit ("unknown" outside a git checkout)."""
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"

