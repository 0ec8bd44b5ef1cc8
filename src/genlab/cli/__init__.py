"""The command-line layer: the entry wrapper (one error line, exit codes), task set-up
(threads, config printing) and the callbacks/loggers of a run."""
