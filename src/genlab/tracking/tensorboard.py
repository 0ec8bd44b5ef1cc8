"""TensorBoard logging that compares a sweep: runs named by what differs, images, HParams.

``GenlabTensorBoardLogger`` (in ``logger=default`` and ``logger=tensorboard``) is Lightning's
``TensorBoardLogger`` plus:

- **names**: each run's event files go to ``<root>/<run name>/`` with the run named after its
  overrides (``model=gan,seed=1``, :mod:`genlab.tracking.run_identity`); in a multirun the
  root is ``<sweep dir>/tensorboard`` for every job, so ``tensorboard --logdir <sweep
  dir>/tensorboard`` shows the sweep's runs side by side.
- **images**: sample grids reach the Images tab, per epoch, with the step
  (:func:`genlab.tracking.images.log_image`).
- **HParams**: :meth:`log_hyperparams` writes the HParams plugin's session (the run's compact
  hyperparameters, :func:`genlab.tracking.hparams.run_hparams`), no ``hp_metric``;
  :meth:`write_experiment` declares which scalars are the HParams metrics (``val/fid``,
  ``best/val/fid``, ...; the values are the logged scalars). A sweep declares them once for all
  of its jobs at its end (:func:`write_sweep_experiment`), since TensorBoard reads one
  experiment per log dir.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from genlab.runs.naming import dir_name
from genlab.tracking.run_identity import current_run

SUBDIR = "tensorboard"
METRICS_FILE = "hparams_metrics.txt"  # the HParams metrics of a run (read by the sweep)


def _write(log_dir: str | Path, tag: str, plugin_data: Any) -> None:
    """Write one HParams plugin summary (``tag``: experiment, session start) into ``log_dir``."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import metadata
    from torch.utils.tensorboard import SummaryWriter

    summary_metadata = metadata.create_summary_metadata(plugin_data)
    summary = Summary(value=[Summary.Value(tag=tag, metadata=summary_metadata)])
    with SummaryWriter(log_dir=str(log_dir)) as writer:
        writer.file_writer.add_summary(summary)


def hparam_value(value: Any) -> bool | int | float | str:
    """A value TensorBoard's HParams plugin takes: bools, numbers, text (lists become text)."""
    if isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return "null" if value is None else str(value)


def _data_type(value: Any) -> int:
    from tensorboard.plugins.hparams import api_pb2

    if isinstance(value, bool):
        return api_pb2.DATA_TYPE_BOOL
    if isinstance(value, int | float):
        return api_pb2.DATA_TYPE_FLOAT64
    return api_pb2.DATA_TYPE_STRING


def write_experiment(
    log_dir: str | Path, hparams: dict[str, Any], metrics: list[str], differing: set[str]
) -> None:
    """The HParams experiment of ``log_dir``: its hyperparameter columns (``hparams``' keys;
    those in ``differing`` first, as TensorBoard sorts them) and metric columns (scalar tags)."""
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    experiment = api_pb2.Experiment(
        hparam_infos=[
            api_pb2.HParamInfo(
                name=key, type=_data_type(hparam_value(value)), differs=key in differing
            )
            for key, value in hparams.items()
        ],
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=m)) for m in metrics],
    )
    data = plugin_data_pb2.HParamsPluginData(experiment=experiment)
    _write(log_dir, metadata.EXPERIMENT_TAG, data)


def write_session(log_dir: str | Path, hparams: dict[str, Any]) -> None:
    """This run's hyperparameter values (the HParams plugin's session start)."""
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    session = plugin_data_pb2.SessionStartInfo()
    for key, value in hparams.items():
        value = hparam_value(value)
        if isinstance(value, bool):
            session.hparams[key].bool_value = value
        elif isinstance(value, int | float):
            session.hparams[key].number_value = value
        else:
            session.hparams[key].string_value = value
    data = plugin_data_pb2.HParamsPluginData(session_start_info=session)
    _write(log_dir, metadata.SESSION_START_INFO_TAG, data)


class GenlabTensorBoardLogger(TensorBoardLogger):
    """TensorBoardLogger named by the run's overrides, with images and a compact HParams view."""

    def __init__(
        self,
        save_dir: str,
        name: str | None = None,
        side_by_side: bool = True,
        log_graph: bool = False,
        **kwargs: Any,
    ) -> None:
        identity = current_run()
        if side_by_side and identity.multirun and identity.logger_root(SUBDIR):
            save_dir = identity.logger_root(SUBDIR)
        self.run_name = name or identity.name
        kwargs.setdefault("default_hp_metric", False)  # no hp_metric = -1
        super().__init__(
            save_dir=save_dir,
            name=dir_name(self.run_name),
            version="",
            log_graph=log_graph,
            **kwargs,
        )
        self.is_sweep_job = identity.multirun and side_by_side
        #: the overrides' keys: the columns that say how this run differs (shown first)
        self.differing = {str(o).split("=", 1)[0].lstrip("+~") for o in identity.overrides}

    @rank_zero_only
    def log_hyperparams(self, params: Any, metrics: Any = None, step: int | None = None) -> None:
        """Write ``params`` (flat: name -> value) as this run's HParams session; keep them for
        ``hparams.yaml``. Lightning's own call with the model's nested hyperparameters is
        skipped: genlab's tracking passes the flat set that holds them
        (:class:`genlab.tracking.run.RunTracking`)."""
        from lightning.pytorch.utilities.parsing import AttributeDict

        if isinstance(params, AttributeDict) or not isinstance(params, dict):
            return
        values = {str(key): hparam_value(value) for key, value in params.items()}
        self.hparams.update(values)
        write_session(self.log_dir, values)

    @rank_zero_only
    def declare_metrics(self, metrics: list[str]) -> None:
        """Name the scalars that are this run's HParams metrics (``hparams_metrics.txt``); a
        single run also writes its experiment, a sweep job leaves that to the sweep (one
        experiment per log dir, :func:`write_sweep_experiment`)."""
        Path(self.log_dir).mkdir(parents=True, exist_ok=True)
        (Path(self.log_dir) / METRICS_FILE).write_text("\n".join(metrics) + "\n", encoding="utf-8")
        if not self.is_sweep_job:
            write_experiment(self.log_dir, dict(self.hparams), metrics, self.differing)


def write_sweep_experiment(sweep_dir: str | Path) -> Path | None:
    """At the end of a sweep: one HParams experiment in ``<sweep dir>/tensorboard`` whose
    columns are every job's hyperparameters (their ``hparams.yaml``, read as data) and the
    metrics any job declared (its :data:`METRICS_FILE`). None when no job logged to TensorBoard."""
    import yaml

    root = Path(sweep_dir) / SUBDIR
    runs: list[dict[str, Any]] = []
    metrics: list[str] = []
    for run in sorted(p for p in root.glob("*") if p.is_dir()):
        try:
            loaded = yaml.safe_load((run / "hparams.yaml").read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(loaded, dict):
            runs.append({str(k): v for k, v in loaded.items()})
        names = run / METRICS_FILE
        if names.is_file():
            metrics += [m for m in names.read_text(encoding="utf-8").split() if m not in metrics]
    if not runs:
        return None
    union: dict[str, Any] = {}
    for hparams in runs:
        for key, value in hparams.items():
            union.setdefault(key, value)
    # a column differs when the runs that have it disagree (a GAN-only key is not "differing")
    differing = {k for k in union if len({repr(run[k]) for run in runs if k in run}) > 1}
    write_experiment(root, union, metrics, differing)
    return root
