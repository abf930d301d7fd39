"""``Wave``: audio as a tensor with its sample rate, and the pipe operator.

``wave | step`` returns a new :class:`Wave` whose samples are the step's output;
the sample rate (and, for ``Remix``, the channel count) is filled into steps that
were built without one. Pipes are lazy: ``wave | A | B | C`` collects the steps and
runs them when the samples are first needed (``.ys``, ``.save``), through the same
engine as ``fxcli process`` (:func:`fxcli.engine.runner.process_array`): analysis
steps get their measuring pass, consecutive IIR filters and gains are fused into
one cascade and consecutive FIR filters into one kernel, so the numbers equal the
CLI's for the same chain.

Any ``nn.Module`` can be piped: ``nn.Sequential`` containers are opened (their
filters are fused like the rest); other modules run as one stateless step on the
whole signal, with ``fs`` filled into their sub-modules that lack one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fxcli.steps import Step

__all__ = ["Wave"]


class _ModuleStep(Step):
    """A plain ``nn.Module`` as a stateless step over the whole signal."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        self.label = type(module).__name__

    def process(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        return self.module(x), state


def _bind(module: nn.Module, fs: float, channels: int) -> list[Step]:
    """The steps of ``module`` for a signal at ``fs`` Hz with ``channels`` channels."""
    if isinstance(module, nn.Sequential):
        steps: list[Step] = []
        for child in module:
            for step in _bind(child, fs, channels):
                steps.append(step)
                fs, channels = step.output_rate(fs), step.output_channels(channels)
        return steps
    if isinstance(module, Step):
        return [module.bind(fs, channels)]
    for sub in module.modules():  # a custom module: configure the filters inside
        if isinstance(sub, Step) and getattr(sub, "fs", 0) is None:
            sub.bind(fs, channels)
    return [_ModuleStep(module)]


class Wave:
    """Audio samples ``ys`` of shape ``(channels, time)`` at ``fs`` Hz.

    Args:
        ys: array or tensor, ``(channels, time)`` or ``(time,)`` (mono); floating
            point (float32 stays float32, float64 stays float64).
        fs: sample rate in Hz.
        subtype: the file subtype to write by default (``save`` keeps a loaded
            file's subtype; arrays default to ``FLOAT``).

    Devices: any (``to(device)`` moves the samples; the pipe runs each step on the
    wave's device). Autograd: gradients flow from ``ys`` of the result back to the
    samples (and to learnable filter parameters) through every step that supports
    them (each step's docstring says); steps that do not raise when asked to.
    """

    def __init__(self, ys: Any, fs: float, *, subtype: str | None = None) -> None:
        t = torch.as_tensor(np.asarray(ys) if not isinstance(ys, Tensor) else ys)
        if not t.is_floating_point():
            raise ValueError(f"Wave: samples must be floating point, got {t.dtype}")
        if t.ndim == 1:
            t = t.unsqueeze(0)
        if t.ndim != 2:
            raise ValueError(f"Wave: ys must be (channels, time) or (time,), got {tuple(t.shape)}")
        if not (np.isfinite(fs) and fs > 0):
            raise ValueError(f"Wave: fs must be a sample rate > 0 Hz, got {fs!r}")
        self._ys = t
        self._fs = float(fs)
        self._steps: list[Step] = []
        self.subtype = subtype
        self.format: str | None = None

    # ------------------------------------------------------------------ data
    def _materialize(self) -> None:
        if self._steps:
            from fxcli.engine.runner import process_array

            for step in self._steps:
                step.check_gradients(self._ys)

            self._ys = process_array(self._steps, self._ys, device=self._ys.device)
            self._steps = []

    @property
    def ys(self) -> Tensor:
        """The samples, ``(channels, time)``, on the wave's device (runs pending steps)."""
        self._materialize()
        return self._ys

    @ys.setter
    def ys(self, value: Tensor) -> None:
        self._ys, self._steps = torch.as_tensor(value), []

    @property
    def fs(self) -> float | int:
        """Sample rate in Hz (after the pending steps; an int when whole)."""
        fs = self._fs
        for step in self._steps:
            fs = step.output_rate(fs)
        return int(fs) if float(fs).is_integer() else fs

    @property
    def channels(self) -> int:
        return int(self.ys.shape[0])

    @property
    def device(self) -> torch.device:
        return self._ys.device

    def __len__(self) -> int:
        return int(self.ys.shape[-1])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self) / float(self.fs)

    def to(self, device: torch.device | str) -> Wave:
        """Move the samples (and pending steps) to ``device``; returns ``self``
        (TorchFX style: ``wave.to("cuda")`` works without reassignment)."""
        self._ys = self._ys.to(device)
        self._steps = [s.to(device) for s in self._steps]
        return self

    # ------------------------------------------------------------------ pipe
    def __or__(self, module: nn.Module) -> Wave:
        if not isinstance(module, nn.Module):
            return NotImplemented
        channels = self._ys.shape[0]
        fs = self._fs
        for step in self._steps:
            fs, channels = step.output_rate(fs), step.output_channels(channels)
        out = Wave.__new__(Wave)
        out._ys, out._fs = self._ys, self._fs
        out._steps = [*self._steps, *(s.to(self._ys.device) for s in _bind(module, fs, channels))]
        out.subtype, out.format = self.subtype, self.format
        return out

    # ------------------------------------------------------------------ files
    @classmethod
    def from_file(cls, path: str | Path, device: torch.device | str | None = None) -> Wave:
        """Read a whole audio file (float32; float64 for 32-bit PCM and double files).
        The file's subtype and container are kept for :meth:`save`."""
        from fxcli.io.audio import probe, read_blocks

        info = probe(Path(path))
        blocks = list(read_blocks(info, 1 << 20))
        data = (
            np.concatenate(blocks, axis=1)
            if blocks
            else np.zeros((info.channels, 0), info.compute_dtype)
        )
        wave = cls(torch.from_numpy(data), info.samplerate, subtype=info.subtype)
        wave.format = info.format
        return wave.to(device) if device is not None else wave

    def save(
        self,
        path: str | Path,
        subtype: str | None = None,
        *,
        dither: str | None = None,
        overwrite: bool = True,
    ) -> Path:
        """Write atomically (temp file, fsync, rename). The name's extension decides
        the container and codec (``.wav``, ``.flac``, ``.aiff``, ``.ogg`` Vorbis,
        ``.opus``, ``.mp3``, ``.w64``, ``.rf64``, ``.caf``; rules in
        :mod:`fxcli.io.containers`); an audio extension that cannot be written
        (``.m4a``) raises :class:`~fxcli.errors.AudioError`. The subtype defaults to
        the source file's where the container holds it (``FLOAT`` for waves made from
        arrays, PCM_24 where the container holds no float), never silently 16-bit;
        lossy outputs get libsndfile's high-quality default bitrate
        (:data:`fxcli.io.containers.DEFAULT_KBPS`). ``dither`` defaults to TPDF for
        PCM of 16 bits or fewer. Clipped samples are counted and rounded, never
        wrapped; returns the path."""
        import soundfile as sf

        from fxcli.engine.runner import default_dither
        from fxcli.errors import UsageError
        from fxcli.io.audio import AtomicWriter, AudioError
        from fxcli.io.containers import check_stream, choose, container_for, lossy_encoding

        dest = Path(path)
        if dest.exists() and not overwrite:
            raise FileExistsError(f"{dest} exists")
        try:
            in_subtype = self.subtype
            if in_subtype is None:  # made from arrays: FLOAT where the container holds it
                named = container_for(dest)
                holds_float = named is None or sf.check_format(named, "FLOAT")
                in_subtype = "FLOAT" if holds_float else "PCM_24"
            out = choose(
                in_container=self.format or "WAV",
                in_subtype=in_subtype,
                dest=dest,
                fmt="same",
                subtype=subtype or "same",
                preset_subtype="same",
            )
        except UsageError as exc:
            raise AudioError(str(exc)) from None
        sub = out.subtype
        fs = self.fs
        if not float(fs).is_integer():
            raise AudioError(f"cannot write a sample rate of {fs} Hz (not whole)")
        y = self.ys.detach().cpu().numpy()
        why = check_stream(sub, int(fs), y.shape[0], library=True)
        if why is not None:
            raise AudioError(f"cannot write {dest}: {why}") from None
        out = lossy_encoding(out, None, int(fs), y.shape[0], None)
        with AtomicWriter(
            dest,
            int(fs),
            y.shape[0],
            out,
            dither or default_dither(sub),
            replace=overwrite,  # overwrite=False: never over a file that appeared meanwhile
        ) as writer:
            writer.write(y)
            writer.commit()
        return dest

    def __repr__(self) -> str:
        return (
            f"Wave(channels={self._ys.shape[0]}, fs={self.fs}, device={self.device}, "
            f"pending_steps={len(self._steps)})"
        )
