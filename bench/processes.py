"""What the benchmarks read about the processes they measure, from /proc (Linux only): CPU time, peak
resident set, open connections; and which PostgreSQL backends serve a database."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit

from bench.report import progress
from harness.services import POSTGRES


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float | None:
    """The process's high-water resident set (VmHWM)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def wait_idle(pids: Sequence[int], timeout: float = 30.0, window: float = 0.5, busy: float = 0.15) -> None:
    """Until each process used under `busy` of a core over `window` s: workers start (imports, the
    application) after `serve` answers /healthz, and a run must not time their start-up."""
    deadline = time.monotonic() + timeout
    before = {pid: cpu_seconds(pid) or 0.0 for pid in pids}
    while time.monotonic() < deadline:
        time.sleep(window)
        after = {pid: cpu_seconds(pid) or 0.0 for pid in pids}
        if all(after[pid] - before[pid] < busy * window for pid in pids):
            return
        before = after
    progress(f"processes still busy after {timeout} s; measuring anyway")


def connected_to(pid: int, port: int) -> bool:
    """Whether the process has an established TCP connection to `port`."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    except OSError:
        return False
    for table in ("tcp", "tcp6"):
        with suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                established = fields[3] == "01"
                if established and int(fields[2].rsplit(":", 1)[1], 16) == port and fields[9] in inodes:
                    return True
    return False


def postgres_backends(database_url: str) -> list[int]:
    """The pids of the PostgreSQL backends connected to a database (on this machine)."""
    import psycopg

    name = urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(POSTGRES + "/postgres", autocommit=True) as admin:
        rows = admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)).fetchall()
    return [int(pid) for (pid,) in rows]
