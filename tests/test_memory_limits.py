"""The whole-image memory check sees the job's cgroup limit and ``ulimit -v``, not only the machine.

A SLURM job or a container is killed by the kernel at its cgroup limit, without a message: the
readers must refuse what does not fit under that limit the way they refuse what the machine lacks.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from astropy.io import fits

import sciconv as sc
from sciconv.errors import InvalidImageError
from sciconv.io import _memory

GIB = 2**30


def _cgroup_tree(tmp_path, version: int, limits: dict[str, tuple[str, int, int]]):
    """Folders of a fake cgroup hierarchy: ``{relative: (limit, usage, inactive_file)}``."""
    names = (
        ("memory.max", "memory.current", "inactive_file")
        if version == 2
        else ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")
    )
    root = tmp_path / f"cgroup{version}"
    for relative, (limit, usage, inactive) in limits.items():
        folder = root / relative
        folder.mkdir(parents=True, exist_ok=True)
        (folder / names[0]).write_text(f"{limit}\n")
        (folder / names[1]).write_text(f"{usage}\n")
        (folder / "memory.stat").write_text(f"anon 5\n{names[2]} {inactive}\nfile 9\n")
    if version == 2:
        (root / "cgroup.controllers").write_text("cpu memory\n")
    return root


def _use(monkeypatch, tmp_path, root, version: int, line: str):
    proc = tmp_path / "proc_cgroup"
    proc.write_text(line + "\n")
    monkeypatch.setattr(_memory, "_PROC_CGROUP", proc)
    monkeypatch.setattr(_memory, "_V2_ROOT" if version == 2 else "_V1_ROOT", root)
    other = tmp_path / "absent"
    monkeypatch.setattr(_memory, "_V1_ROOT" if version == 2 else "_V2_ROOT", other)
    monkeypatch.setattr(_memory, "_machine", lambda: (64 * GIB, "free"))


def test_cgroup_v2_parent_limit_binds(tmp_path, monkeypatch):
    # SLURM: the job's cgroup has the limit, the step's cgroup below it says "max"
    root = _cgroup_tree(
        tmp_path,
        2,
        {
            "": ("max", 50 * GIB, 0),
            "job_7": (str(4 * GIB), 3 * GIB, GIB // 2),
            "job_7/step_0": ("max", 3 * GIB, 0),
        },
    )
    _use(monkeypatch, tmp_path, root, 2, "0::/job_7/step_0")
    room, what = _memory.available_memory()
    assert room == 4 * GIB - 3 * GIB + GIB // 2  # droppable page cache counts as free
    assert "job_7" in what and "memory limit" in what


def test_cgroup_v1_and_no_limit(tmp_path, monkeypatch):
    unlimited = 9223372036854771712
    root = _cgroup_tree(
        tmp_path,
        1,
        {"": (str(unlimited), 10 * GIB, 0), "docker/abc": (str(2 * GIB), GIB, 0)},
    )
    _use(monkeypatch, tmp_path, root, 1, "4:memory:/docker/abc\n3:cpu:/")
    assert _memory.available_memory()[0] == GIB
    (root / "docker/abc/memory.limit_in_bytes").write_text(f"{unlimited}\n")
    assert _memory.available_memory() == (64 * GIB, "free")  # no limit: the machine's figure


def test_cgroup_path_outside_the_mount_reads_the_mount_point(tmp_path, monkeypatch):
    # docker without a cgroup namespace: /proc/self/cgroup names a path the container cannot see
    root = _cgroup_tree(tmp_path, 2, {"": (str(3 * GIB), GIB, 0)})
    _use(monkeypatch, tmp_path, root, 2, "0::/system.slice/docker-1234.scope")
    assert _memory.available_memory()[0] == 2 * GIB


def test_reader_refuses_past_the_cgroup_limit(tmp_path, monkeypatch):
    root = _cgroup_tree(tmp_path, 2, {"": (str(2_000_000), 1_000_000, 0)})
    _use(monkeypatch, tmp_path, root, 2, "0::/")
    path = tmp_path / "image.fits"
    fits.PrimaryHDU(np.zeros((300, 300), np.float32)).writeto(path)
    with pytest.raises(InvalidImageError, match="memory limit") as err:
        sc.io.read(path)
    assert str(path) in str(err.value) and "lazy=True" in str(err.value)
    assert sc.io.read(path, section=(slice(0, 10), slice(0, 10))).data.shape[:2] == (10, 10)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ulimit -v and /proc are Linux")
def test_reader_refuses_past_ulimit_v(tmp_path):
    # a 6000 x 6000 float32 FITS (sparse on disk) under an address-space limit 300 MB above
    # what the interpreter already maps: refused with a message, not a MemoryError
    path = tmp_path / "big.fits"
    header = fits.Header({"SIMPLE": True, "BITPIX": -32, "NAXIS": 2, "NAXIS1": 6000})
    header["NAXIS2"] = 6000
    with open(path, "wb") as fh:
        fh.write(header.tostring().encode("ascii"))
        fh.truncate(2880 + 6000 * 6000 * 4 + 2880 - (6000 * 6000 * 4) % 2880)
    script = textwrap.dedent(
        f"""
        import resource
        import sciconv.io
        from sciconv.errors import InvalidImageError
        size = [int(l.split()[1]) * 1024 for l in open("/proc/self/status")
                if l.startswith("VmSize:")][0]
        resource.setrlimit(resource.RLIMIT_AS, (size + 300 * 2**20, resource.RLIM_INFINITY))
        try:
            sciconv.io.read({str(path)!r})
        except InvalidImageError as err:
            print("REFUSED", err)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert "REFUSED" in out.stdout, out.stdout + out.stderr
    assert "ulimit -v" in out.stdout and "big.fits" in out.stdout
