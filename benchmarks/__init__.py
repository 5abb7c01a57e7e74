"""Performance harness for clipcore (``python -m benchmarks``); not part of the test suite.

Every number is a ratio against a baseline measured in the same process, on the same
device and batch size, so results compare across machines: the smoothness estimators are
priced in plain training steps. See :mod:`benchmarks.__main__` for the definitions.
"""
