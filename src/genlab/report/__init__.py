"""Local comparison of finished runs (``python -m genlab.compare``), lowest layer first:

* :mod:`~genlab.report.protocol`: what each run's FIDs measured (``sample_quality.json``);
* :mod:`~genlab.report.series`: ``csv/metrics.csv`` as one series per metric (step, wall time);
* :mod:`~genlab.report.runs`: a run directory read as data, and run names;
* :mod:`~genlab.report.table`: differing config values, seed groups, ranking, notes;
* :mod:`~genlab.report.text`: names shortened or made literal for display;
* :mod:`~genlab.report.charts`: one Plotly figure per metric;
* :mod:`~genlab.report.page` (+ :mod:`~genlab.report.page_script`): the self-contained HTML.

Nothing here imports torch or :mod:`genlab.compare`.
"""
