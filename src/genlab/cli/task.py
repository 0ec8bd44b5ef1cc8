"""Run-level helpers: threads, config printing, user-facing error handling."""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def available_cores() -> int:
    """CPU cores this process may run on: its affinity mask, capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:  # cgroup v2 "<quota> <period>" or "max <period>"
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def busy_cores(interval: float = 0.1) -> float | None:
    """Cores kept busy by other programs right now: the machine's non-idle CPU time over
    ``interval`` seconds (``/proc/stat``) minus this process's own; the 1-minute load average
    where ``/proc/stat`` is missing; None when neither is available."""

    def totals() -> tuple[float, float]:
        fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
        return sum(fields[:8]) - idle, sum(fields[:8])

    try:
        (busy0, total0), own0 = totals(), time.process_time()
        time.sleep(interval)
        (busy1, total1), own1 = totals(), time.process_time()
        if total1 <= total0:
            raise OSError("no ticks")
        ncpu = os.cpu_count() or 1
        ticks_per_core = (total1 - total0) / ncpu  # the interval, in clock ticks
        busy = (busy1 - busy0) / ticks_per_core - (own1 - own0) / interval  # in cores
        return max(0.0, busy)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return max(0.0, os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


def sweep_parallel_jobs() -> int:
    """Jobs a Hydra multirun launcher runs at once on this machine (joblib ``n_jobs``), else 1."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            return 1
        hydra_cfg = HydraConfig.get()
        if getattr(hydra_cfg.mode, "name", str(hydra_cfg.mode)) != "MULTIRUN":
            return 1
        n_jobs = hydra_cfg.launcher.get("n_jobs")
    except Exception:  # noqa: BLE001 - a hint only
        return 1
    if not isinstance(n_jobs, int) or n_jobs == 0:
        return 1
    return n_jobs if n_jobs > 0 else max(1, (os.cpu_count() or 1) + 1 + n_jobs)  # joblib's -k


def choose_threads(cores: int, processes: int = 1, busy: float | None = None) -> int:
    """Torch threads for one of ``processes`` processes sharing ``cores`` cores.

    Args:
        cores: cores available to this process (affinity / cgroup quota).
        processes: processes of this run on the node (DDP ranks x parallel sweep jobs).
        busy: cores kept busy by other programs (a sibling counts as one core), None = unknown.

    Returns ``cores // processes``, lowered to the free cores' share when other programs keep
    some cores busy (a core at least half busy counts as taken), at least 1. More threads than
    free cores makes every op wait for the slowest thread: small nets then run 2-10x slower.
    """
    processes = max(1, int(processes))
    share = max(1, cores // processes)
    if busy is None:
        return share
    others = max(0.0, busy - (processes - 1))  # siblings started with us are not "others"
    free = cores - math.floor(others + 0.5)
    return max(1, min(share, free // processes))


def configure_threads(cfg: DictConfig) -> int | None:
    """Give each process its share of the CPU cores that are actually free, and return it.

    ``num_threads`` in the config wins; on a GPU nothing is changed (None); otherwise
    :func:`choose_threads` of the available cores, the processes of this run on the node (DDP
    devices x parallel joblib sweep jobs) and the cores other programs keep busy right now;
    with ``trainer.deterministic=true`` the load is ignored (the same share on every start, so
    a resumed run continues bit-exactly).
    """
    import torch  # not at module level: the CLI start-up path imports this module

    threads = cfg.get("num_threads")
    if threads is None:
        trainer = cfg.get("trainer") or {}
        on_cpu = trainer.get("accelerator") == "cpu" or not torch.cuda.is_available()
        if not on_cpu:
            return None
        devices = trainer.get("devices", 1)
        ranks = devices if isinstance(devices, int) and devices > 0 else 1
        cores, processes = available_cores(), ranks * sweep_parallel_jobs()
        # a deterministic run must not depend on the load: CPU kernels split their sums by
        # thread, so another thread count rounds differently (and a resume would drift)
        busy = None if trainer.get("deterministic") else busy_cores()
        threads = choose_threads(cores, processes, busy)
        log.info(
            f"torch threads: {threads} ({cores} cores available, "
            f"{'?' if busy is None else f'{busy:.1f}'} busy with other programs, "
            f"{processes} process(es) of this run; set num_threads= to choose)"
        )
    torch.set_num_threads(int(threads))
    return int(threads)


def print_config(cfg: DictConfig) -> None:
    """Print the composed config as a rich tree and save it beside the run as config_tree.log."""
    from rich import print as rprint
    from rich.syntax import Syntax

    text = OmegaConf.to_yaml(cfg, resolve=False)
    rprint(Syntax(text, "yaml", theme="ansi_dark", background_color="default"))
    output_dir = cfg.get("paths", {}).get("output_dir")
    if output_dir:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        (Path(output_dir) / "config_tree.log").write_text(text)
