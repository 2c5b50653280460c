"""How many bytes this process can still allocate: the machine, its cgroup and its address space.

``MemAvailable`` is the machine's view. A batch job under SLURM, a Kubernetes pod or a Docker
container with ``--memory`` is killed by the kernel at its *cgroup's* limit, often far below what
the machine has free, and ``ulimit -v`` (``RLIMIT_AS``) makes allocations fail past the address
space limit. :func:`available_memory` takes the smallest of the three, so a whole-image read is
refused with a message instead of the job being OOM-killed without one.
"""

from __future__ import annotations

import os
from pathlib import Path

# cgroup v1 writes "no limit" as a page-rounded 2**63 - 1; anything this large is no limit.
_NO_LIMIT = 2**60
_V2_ROOT = Path("/sys/fs/cgroup")
_V1_ROOT = Path("/sys/fs/cgroup/memory")
_PROC_CGROUP = Path("/proc/self/cgroup")


def available_memory() -> tuple[int, str] | None:
    """Bytes this process could allocate now, and what sets that bound.

    The smallest of: the machine's ``MemAvailable`` (free + reclaimable page cache), the headroom
    of this process's memory cgroup and of each cgroup above it (limit minus usage, page cache
    that can be dropped not counted as used; cgroup v2 and v1), and the address space left under
    ``RLIMIT_AS``. Systems without ``/proc`` give the physical memory size.

    Returns
    -------
    tuple of (int, str) or None
        Bytes, and ``"free"``, ``"free under this job's memory limit (cgroup <path>)"`` or
        ``"free under the address-space limit (ulimit -v)"``; None when nothing can be read.

    Examples
    --------
    >>> got = available_memory()
    >>> got is None or got[0] > 0
    True
    """
    found = [b for b in (_machine(), _cgroup(), _address_space()) if b is not None]
    return min(found, key=lambda b: b[0]) if found else None


def _machine() -> tuple[int, str] | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "free"
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "in this machine"
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup() -> tuple[int, str] | None:
    """The tightest headroom of this process's memory cgroup and its ancestors."""
    try:
        lines = _PROC_CGROUP.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    best = None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "" and (_V2_ROOT / "cgroup.controllers").exists():
            walked = _walk(_V2_ROOT, parts[2], _v2_headroom)
        elif "memory" in parts[1].split(","):
            walked = _walk(_V1_ROOT, parts[2], _v1_headroom)
        else:
            continue
        if walked is not None and (best is None or walked[0] < best[0]):
            best = walked
    return best


def _walk(root: Path, relative: str, headroom) -> tuple[int, str] | None:
    """Headroom of the cgroup at ``root/relative`` and of every cgroup up to ``root``.

    Without a cgroup namespace the process's path may not exist under the mount (the container
    sees only its own cgroup at the mount point): the walk then starts at the mount point.
    """
    here = root / relative.strip("/")
    if not here.is_dir():
        here = root
    best = None
    while True:
        room = headroom(here)
        if room is not None and (best is None or room < best[0]):
            best = (room, f"free under this job's memory limit (cgroup {here})")
        if here == root or root not in here.parents:
            return best
        here = here.parent


def _v2_headroom(folder: Path) -> int | None:
    limit = _read_int(folder / "memory.max")
    if limit is None or limit >= _NO_LIMIT:
        return None
    used = _read_int(folder / "memory.current")
    if used is None:
        return None
    return max(limit - used + _stat(folder, "inactive_file"), 0)


def _v1_headroom(folder: Path) -> int | None:
    limit = _read_int(folder / "memory.limit_in_bytes")
    if limit is None or limit >= _NO_LIMIT:
        return None
    used = _read_int(folder / "memory.usage_in_bytes")
    if used is None:
        return None
    return max(limit - used + _stat(folder, "total_inactive_file"), 0)


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if text == "max":
        return _NO_LIMIT
    try:
        return int(text)
    except ValueError:
        return None


def _stat(folder: Path, key: str) -> int:
    """A counter of ``memory.stat`` (page cache the kernel drops before it kills), or 0."""
    try:
        for line in (folder / "memory.stat").read_text(encoding="ascii").splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, UnicodeDecodeError, ValueError):
        pass
    return 0


def _address_space() -> tuple[int, str] | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    try:
        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (OSError, ValueError, AttributeError):
        return None
    if limit == resource.RLIM_INFINITY or limit < 0:
        return None
    size = 0
    try:
        with open("/proc/self/status", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    size = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    return max(limit - size, 0), "free under the address-space limit (ulimit -v)"
