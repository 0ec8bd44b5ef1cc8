"""The status of a training run in ``<run dir>/status.json`` around ``trainer.fit``."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path
from typing import Any

from genlab.runs.records import write_status


@contextlib.contextmanager
def recorded_status(run_dir: str | Path | None, callbacks: list, **details: Any):
    """Write ``status.json`` around a fit: ``running``, then ``completed``, ``collapsed`` (the
    run ended but :class:`genlab.callbacks.collapse.CollapseGuard` fired), ``diverged``
    (DivergenceError, re-raised), ``interrupted`` (SIGTERM/SIGINT: re-raised as
    :class:`genlab.checks.errors.RunInterrupted` with exit code 128 + signal) or ``failed``.
    Only the global rank 0 writes (under DDP every rank runs this around its own fit)."""
    from lightning.pytorch.utilities import rank_zero_only
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from genlab.callbacks.preemption import PreemptionCheckpoint
    from genlab.checks.errors import DivergenceError, RunInterrupted

    def write(status: str, **more: Any) -> None:
        if run_dir is not None and rank_zero_only.rank == 0:
            write_status(run_dir, status, **details, **more)

    write("running")
    try:
        yield
    except DivergenceError as err:
        write("diverged", error=str(err), step=err.step, what=err.what)
        raise
    except SIGTERMException:
        preemption = next((c for c in callbacks if isinstance(c, PreemptionCheckpoint)), None)
        signum = (preemption.signum if preemption else None) or signal.SIGTERM
        saved = preemption.saved_on_signal if preemption else None
        name = signal.Signals(signum).name
        write("interrupted", signal=name, checkpoint=str(saved) if saved else None)
        message = f"stopped by {name}; " + (
            f"saved {saved} (resume with ckpt_path=last or ckpt_path={saved})"
            if saved
            else "no checkpoint saved (add callbacks=default to get callbacks.preemption)"
        )
        raise RunInterrupted(signum, message) from None
    except BaseException as err:
        write("failed", error=f"{type(err).__name__}: {str(err)[:2000]}")
        raise
    guard = next((c for c in callbacks if getattr(c, "collapsed", False)), None)
    if guard is not None:  # trained to the end, but the collapse guard fired (CollapseGuard)
        write("collapsed", collapse=guard.details)
    else:
        write("completed")
