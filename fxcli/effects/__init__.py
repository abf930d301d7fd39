"""Effects as chain steps (``torch.nn.Module`` subclasses of :class:`fxcli.steps.Step`).

One module per idea: dynamics (compressor, limiter, gate, expander), loudness,
time and channel edits, resampling, convolution and reverb, delay.
"""
