"""The engine: chain planning, chunking, devices and per-file processing.

- :mod:`~fxcli.engine.chain`: running and flushing a chain of steps with state.
- :mod:`~fxcli.engine.device`: device choice and chunk sizes.
- :mod:`~fxcli.engine.pipeline`: reader and writer threads (decode ahead, encode behind).
- :mod:`~fxcli.engine.transfer`: host <-> device copies of chunks (pinned, side stream).
- :mod:`~fxcli.engine.runner`: one preset over many files (the ``Engine``).
- :mod:`~fxcli.engine.feature_engine`: the chain feeding :mod:`fxcli.features`, one
  array per file (:mod:`~fxcli.engine.feature_params`: what to compute;
  :mod:`~fxcli.engine.feature_batches`: short files batched on the device).
"""
