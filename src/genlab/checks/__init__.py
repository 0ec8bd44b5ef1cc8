"""Errors and checks: ConfigError and exit codes, typed-config validators, run-config checks,
and the check that every key of a composed config is one genlab reads (known_keys).

The lowest layer of genlab: it imports nothing else of genlab but genlab.compat (known_keys
imports a ``_target_`` class named in the config, as instantiation would, only to read the
arguments it takes)."""
