"""Errors and checks: ConfigError and exit codes, typed-config validators, run-config checks.

The lowest layer of genlab: it imports nothing else of genlab but genlab.compat."""
