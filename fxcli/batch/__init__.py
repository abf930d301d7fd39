"""Batch runs: shards of the input list, a resumable run manifest, fsspec URLs
(object storage) for inputs and outputs, several devices per run, and a Ray
executor. Nothing here imports Ray or fsspec until a run asks for them."""
