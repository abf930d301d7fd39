"""Batch runs: shards of the input list, a resumable run manifest, fsspec URLs
(object storage) for inputs and outputs, several devices per run, and a Ray
executor. :mod:`~fxcli.batch.run` is the one run that ``process`` and ``features``
share (:mod:`~fxcli.batch.feature_run`: features as a batch run). Nothing here
imports Ray or fsspec until a run asks for them."""
