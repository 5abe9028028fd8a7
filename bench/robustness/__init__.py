"""Generated, malformed and hostile traffic against real servers (``python -m bench.robustness``).

Each part is a module with ``run(scale) -> Section`` (see ``bench.robustness.report``);
the CI-size tests in ``tests/robustness/`` call the same functions with a small scale.
"""
