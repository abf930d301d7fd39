"""Measurements as library code: :mod:`~fxcli.measure.analyze` (levels and loudness
of files) and :mod:`~fxcli.measure.benchmark` (timed, output-checked sweeps of
filter chains). Nothing here writes to the console; the commands in
:mod:`fxcli.cli` render the results."""
