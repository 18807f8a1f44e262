"""The ``bench`` command: CLI, runner and reports on top of ``lpsr``."""
