"""Telling a live worker process from a dead one, on this machine."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

HOST = socket.gethostname()  # a job records the machine its process runs on


def process_identity(pid: int) -> str | None:
    """Something that tells this process apart from a later one with the same pid: its start time.

    Linux: the start tick in ``/proc/<pid>/stat`` (plus the boot time); elsewhere ``ps -o lstart``.
    None when it cannot be read (no such process, or no way to ask)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(line for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime"))
        return f"{boot.split()[1]}+{stat.rsplit(')', 1)[1].split()[19]}"
    except (OSError, IndexError, StopIteration):
        pass
    if sys.platform.startswith("linux"):
        return None  # /proc answers for every live process here: it is gone
    try:
        out = subprocess.run(["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        # A worker this process started and that has exited is a zombie until reaped; reap it.
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child: ask the system below
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
