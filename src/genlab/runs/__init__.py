"""Run records and checkpoints: env.json/status.json, safe checkpoint reading and resolution,
atomic writes, RNG states and the multi-process collectives training relies on."""
