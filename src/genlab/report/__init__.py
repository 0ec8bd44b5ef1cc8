"""Local comparison of finished runs (``python -m genlab.compare``): load, plot, write HTML."""
