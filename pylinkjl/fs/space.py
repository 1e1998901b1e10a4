"""Which device a path is on and how much room is left there (for "no space left on <device>")."""

from __future__ import annotations

import os
from pathlib import Path


def _existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def mount_point(path: Path) -> Path:
    """The mount point of the file system ``path`` (or its nearest existing ancestor) is on."""
    p = _existing(path)
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return p


def _device(mount: Path) -> str | None:
    """``<source> <fstype>`` of the mount at ``mount`` from /proc/self/mounts (Linux), else None."""
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    found = None
    for line in lines:  # the last mount on a point is the visible one
        fields = line.split()
        if len(fields) >= 3 and fields[1].replace("\\040", " ") == str(mount):
            found = f"{fields[0]}, {fields[2]}"
    return found


def free_bytes(path: Path) -> int | None:
    """Bytes an unprivileged writer may still use on the file system of ``path``."""
    try:
        st = os.statvfs(_existing(path))
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize


def describe_free_space(path: Path) -> str:
    """``/mnt/small (tmpfs, tmpfs; 0 bytes free of 2 MiB)``: the device a path is on and its room."""
    mount = mount_point(path)
    parts = []
    device = _device(mount)
    if device:
        parts.append(device)
    try:
        st = os.statvfs(_existing(path))
        parts.append(f"{st.f_bavail * st.f_frsize} bytes free of {st.f_blocks * st.f_frsize}")
    except (OSError, AttributeError):
        pass
    return f"{mount} ({'; '.join(parts)})" if parts else str(mount)
