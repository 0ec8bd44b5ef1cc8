"""Lightning callbacks genlab adds to a run (sample grids, sample-quality metrics, ...)."""
