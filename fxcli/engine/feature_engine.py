"""The feature engine of ``fxcli features``: :class:`FeatureEngine` runs a preset's
chain (the same :class:`~fxcli.engine.runner.Engine` as ``process``: designed once
per rate, analysis passes, state carried across chunks, OOM retry, finiteness checks)
and feeds its output to :mod:`fxcli.features`, one array per file (and a PNG with
``image``), written atomically on a writer thread.

- :meth:`FeatureEngine.process`: one file, streamed chunk by chunk (what a Ray task
  or a URL input runs).
- :meth:`FeatureEngine.process_window`: a window of local files; short ones are
  batched on the device (:mod:`fxcli.engine.feature_batches`), long ones streamed.

Either way each file's array equals the library's ``forward`` on the whole
(chain-processed) signal, bit for bit on CPU (the frame grid and the mel matmul's
blocks are anchored at the file start). dB kinds (``logmel``, ``mfcc``): ``ref max``
and ``top_db`` are relative to the maximum over the whole file (all channels), as
``librosa.power_to_db`` on the file's array. The audio runs through the chain and the
transform in ``dtype`` (float32 or float64) for every input.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fxcli.engine.chain import flush_chain, init_states
from fxcli.engine.device import chunk_frames
from fxcli.engine.feature_batches import batches, budgets
from fxcli.engine.feature_params import FeatureParams
from fxcli.engine.pipeline import prefetch
from fxcli.engine.runner import Cancelled, Engine, FileRun
from fxcli.io.audio import OutputExistsError, probe
from fxcli.io.feature_arrays import array_meta, save_array
from fxcli.io.feature_image import save_image
from fxcli.io.paths import Job, skip_existing_output
from fxcli.steps import chain_output

#: ``done(i, result)``: file ``i`` of a window finished (or its write is pending: a
#: future of the result)
DoneFn = Callable[[int, "FeatureResult | Future[FeatureResult]"], None]


# ---------------------------------------------------------------------------- results
@dataclass
class FeatureResult:
    """What happened to one file; ``to_json()`` is the ``--json`` line."""

    input: str
    output: str
    status: str  # ok | failed | skipped
    frames: int = 0  # input frames read
    seconds: float = 0.0
    sample_rate: int | None = None
    channels: int | None = None
    feature_sample_rate: float | None = None  # rate of the signal the features are of
    shape: list[int] | None = None
    dtype: str | None = None
    image: str | None = None
    batched: bool = False
    nonfinite_replaced: int = 0
    elapsed_s: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Prepared:
    """One file between probing and its features: the chain for its rate, chunk size,
    output rate and channels; ``audio``: a short file's whole chain output
    ``(channels, n)`` on the device."""

    job: Any
    res: FeatureResult
    info: Any
    steps: list[Any]
    frames: int  # chunk frames
    run: Any
    rate: float
    channels: int
    dtype: Any
    t0: float
    audio: Any = None


class FeatureEngine(Engine):
    """:class:`fxcli.engine.runner.Engine` (chain design, analysis passes, chunk runs
    with OOM retry and finiteness checks) feeding :mod:`fxcli.features`.

    ``params``: what to compute; ``out_fmt``: ``npy`` | ``npz`` | ``pt``; ``image``:
    also a PNG per file; ``dtype``: ``float32`` | ``float64``, the arrays' dtype and the
    dtype the audio is computed in; ``words`` turns an error into a result's message.
    Set :attr:`cancel` to stop at the next chunk."""

    #: what :mod:`fxcli.batch.work` builds for a file it does not run (skipped, failed)
    result_type = FeatureResult

    def __init__(
        self,
        preset: Any,
        device: Any,
        params: FeatureParams,
        *,
        out_fmt: str,
        image: bool,
        chunk_seconds: float | None,
        overwrite: str,
        nonfinite: str,
        dtype: str = "float32",
        words: Callable[[BaseException], str] = str,
    ) -> None:
        super().__init__(
            preset, device, chunk_seconds=chunk_seconds, overwrite=overwrite,
            nonfinite=nonfinite, words=words,
        )  # fmt: skip
        import torch

        #: the dtype of the audio through the chain and of the arrays
        self.dtype = torch.float64 if dtype == "float64" else torch.float32
        self.params = params
        self.out_fmt = out_fmt
        self.image = image
        self._modules: dict[float, Any] = {}
        #: the writer thread of :meth:`process_window` (None: arrays written inline)
        self.writer: ThreadPoolExecutor | None = None

    def module_for(self, fs: float) -> Any:
        with self._lock:
            if fs not in self._modules:
                self._modules[fs] = self.params.build(fs).to(self.device)
            return self._modules[fs]

    def image_path(self, dest: Path) -> Path:
        return dest.with_suffix(".png")

    def describe_existing(self, res: FeatureResult) -> FeatureResult:
        """An ``ok`` result for an output that exists (skipped): read from the
        array's header and the input's (for its index entry)."""
        info = probe(Path(res.input))
        steps = self.chain_for(info.samplerate, info.channels)
        rate, _ = chain_output(steps, info.samplerate, info.channels)
        shape, dtype = array_meta(Path(res.output), self.out_fmt)
        img = self.image_path(Path(res.output))
        return FeatureResult(
            res.input, res.output, "ok", frames=info.frames,
            seconds=round(info.frames / info.samplerate, 6), sample_rate=info.samplerate,
            channels=info.channels, feature_sample_rate=rate, shape=shape, dtype=dtype,
            image=str(img) if self.image and img.is_file() else None,
        )  # fmt: skip

    def prepare(self, job: Any) -> Prepared | FeatureResult:
        t0 = time.perf_counter()
        res = FeatureResult(str(job.src), str(job.dest), "ok")
        try:
            targets = [job.dest] + ([self.image_path(job.dest)] if self.image else [])
            if skip_existing_output(targets, self.overwrite):
                res.status = "skipped"
                res.notes.append("output exists")
                return res
            info = probe(job.src)
            res.sample_rate, res.channels = info.samplerate, info.channels
            steps = self.chain_for(info.samplerate, info.channels)
            frames = chunk_frames(self.device, info.samplerate, info.channels, self.chunk_seconds)
            run = FileRun(res, frames)  # type: ignore[arg-type]
            steps = self._resolve_analysis(steps, info, frames, run)
            rate, channels = chain_output(steps, info.samplerate, info.channels)
            self.module_for(rate)  # a parameter the rate does not allow fails here
        except Exception as exc:  # noqa: BLE001 - per-file failure
            return self.failed(res, exc, t0)
        return Prepared(job, res, info, steps, frames, run, rate, channels, self.dtype, t0)

    def failed(self, res: FeatureResult, exc: BaseException, t0: float) -> FeatureResult:
        if isinstance(exc, Cancelled):
            raise exc
        import torch

        if isinstance(exc, torch.OutOfMemoryError):
            msg = "out of device memory"
        elif isinstance(exc, OSError):
            msg = f"cannot write: {exc.strerror or exc}"
        else:
            text = self.words(exc).strip()
            msg = text.splitlines()[0] if text else repr(exc)
        res.status, res.error = "failed", msg
        res.elapsed_s = round(time.perf_counter() - t0, 6)
        return res

    def chain_chunks(self, p: Prepared, progress: Callable[[int], None] | None) -> Iterator[Any]:
        """The chain's output for the whole file, chunk by chunk (on the device)."""
        import torch

        states = init_states(p.steps, (p.info.channels,), self.device)
        offset = 0
        for block in prefetch(lambda: self.read_chunks(p.info, p.frames, p.res)):  # type: ignore[arg-type]
            x = torch.from_numpy(block).to(self.device, self.dtype, non_blocking=True)
            y, states = self.run_chunk(p.steps, x, states, offset, p.run)
            offset += block.shape[1]
            if progress:
                progress(block.shape[1])
            yield y
        tail, _ = flush_chain(p.steps, states, p.dtype)
        if tail is not None:
            yield tail
        p.res.frames = offset
        p.res.seconds = round(offset / p.info.samplerate, 6)

    def load_whole(self, p: Prepared, progress: Callable[[int], None] | None) -> None:
        import torch

        parts = list(self.chain_chunks(p, progress))
        p.audio = (
            torch.cat(parts, -1)
            if parts
            else torch.zeros((p.channels, 0), dtype=p.dtype, device=self.device)
        )

    def stream(self, p: Prepared, progress: Callable[[int], None] | None) -> Any:
        """Linear-stage features (spectrogram or mel power) of a long file, streamed."""
        import torch

        module = self.module_for(p.rate)
        spec = module.mel if hasattr(module, "from_power") else module
        state = spec.init_state((p.channels,), self.device)
        outs = []
        for y in self.chain_chunks(p, progress):
            out, state = spec.process(y, state)
            outs.append(out.cpu())
        out, _ = spec.flush(state)
        outs.append(out.cpu())
        return torch.cat(outs, -1)

    def finish(
        self, p: Prepared, linear: Any, *, batched: bool = False
    ) -> FeatureResult | Future[FeatureResult]:
        """dB/DCT on the whole file's linear features here; the array (and PNG) are
        written on the writer thread (fsync and rename overlap the next files'
        compute). Returns the result, or its future while the write is pending."""
        res = p.res
        try:
            module = self.module_for(p.rate)
            feats = module.from_power(linear) if hasattr(module, "from_power") else linear
            feats = feats.detach().cpu().to(self.dtype).contiguous()
        except Exception as exc:  # noqa: BLE001 - per-file failure
            return self.failed(res, exc, p.t0)
        res.batched = batched
        if self.writer is None:
            return self.write(p, feats, module)
        return self.writer.submit(self.write, p, feats, module)

    def write(self, p: Prepared, feats: Any, module: Any) -> FeatureResult:
        res = p.res
        try:
            save_array(feats, p.job.dest, self.out_fmt, replace=self.overwrite == "overwrite")
            if self.image:
                img = self.image_path(p.job.dest)
                title = f"{p.job.src.name}: {self.params.kind}, {p.rate:g} Hz"
                save_image(feats, img, module, self.params, p.rate, title)
                res.image = str(img)
            res.shape = list(feats.shape)
            res.dtype = str(feats.dtype).replace("torch.", "")
            res.feature_sample_rate = p.rate
            if res.nonfinite_replaced:
                res.notes.append(
                    f"replaced {res.nonfinite_replaced} non-finite input samples with 0"
                )
        except OutputExistsError as exc:  # another run wrote it meanwhile
            if self.overwrite != "skip":
                return self.failed(res, exc, p.t0)
            res.status = "skipped"
            res.notes.append("output appeared during processing (another run?)")
        except Exception as exc:  # noqa: BLE001 - per-file failure
            return self.failed(res, exc, p.t0)
        res.elapsed_s = round(time.perf_counter() - p.t0, 6)
        return res

    def batch_features(self, group: list[Prepared]) -> list[Any]:
        """Linear-stage features of equal-rate/channel/dtype short files in one batch:
        zero-padded to the longest, each cut back to its own frame count."""
        import torch
        import torch.nn.functional as F

        module = self.module_for(group[0].rate)
        spec = module.mel if hasattr(module, "from_power") else module
        longest = max(p.audio.shape[-1] for p in group)
        x = torch.stack([F.pad(p.audio, (0, longest - p.audio.shape[-1])) for p in group])
        out = spec(x)  # (files, channels, bins, frames)
        return [
            out[i, ..., : spec.n_frames(p.audio.shape[-1])].contiguous()
            for i, p in enumerate(group)
        ]

    def process(  # type: ignore[override]
        self, job: Job, progress: Callable[[int], None] | None = None
    ) -> FeatureResult:
        """One file, streamed chunk by chunk; never raises for a per-file problem
        (the result says ``failed``)."""
        p = self.prepare(job)
        if isinstance(p, FeatureResult):
            return p
        try:
            lin = self.stream(p, progress)
        except Exception as exc:  # noqa: BLE001 - per-file failure
            return self.failed(p.res, exc, p.t0)
        done = self.finish(p, lin)
        return done.result() if isinstance(done, Future) else done

    def process_window(
        self,
        jobs: list[Job],
        pool: ThreadPoolExecutor,
        done: DoneFn,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """A window of local files on ``pool``'s threads: read and run through the
        chain; short files batched, long ones streamed. ``done(i, result)`` is called
        as each file ``i`` finishes (a future while its write is pending). Raises
        :class:`~fxcli.engine.runner.Cancelled` once :attr:`cancel` is set."""
        if self.writer is None:
            self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fxcli-writer")
        budget, short_max = budgets(self.device.type)
        prepared = list(pool.map(self.prepare, jobs))
        short: list[tuple[int, Prepared]] = []
        for i, p in enumerate(prepared):
            if isinstance(p, FeatureResult):
                done(i, p)
            elif p.info.frames <= p.frames and p.info.frames * p.info.channels <= short_max:
                short.append((i, p))

        def load(item: tuple[int, Prepared]) -> FeatureResult | None:
            try:
                self.load_whole(item[1], progress)
            except Exception as exc:  # noqa: BLE001 - per-file failure
                return self.failed(item[1].res, exc, item[1].t0)
            return None

        finished: set[int] = set()
        for (i, _p), bad in zip(short, pool.map(load, short), strict=True):
            if bad is not None:
                finished.add(i)
                done(i, bad)
        order = {id(p): i for i, p in short}
        loaded = [p for i, p in short if i not in finished]
        for group in batches(loaded, budget, self.params.pad_mode == "reflect"):
            if self.cancel.is_set():
                raise Cancelled()
            linear: list[Any]
            try:
                linear = self.batch_features(group)
            except Exception:  # noqa: BLE001 - retried one by one, failures per file
                linear = []
                for p in group:
                    try:
                        linear.append(self.batch_features([p])[0])
                    except Exception as exc1:  # noqa: BLE001
                        linear.append(exc1)
            for p, lin in zip(group, linear, strict=True):
                p.audio = None
                finished.add(order[id(p)])
                if isinstance(lin, BaseException):
                    done(order[id(p)], self.failed(p.res, lin, p.t0))
                else:
                    done(order[id(p)], self.finish(p, lin, batched=len(group) > 1))
        for i, p in enumerate(prepared):
            if i in finished or isinstance(p, FeatureResult):
                continue
            try:
                lin = self.stream(p, progress)
            except Exception as exc:  # noqa: BLE001 - per-file failure
                done(i, self.failed(p.res, exc, p.t0))
                continue
            done(i, self.finish(p, lin))

    def close(self) -> None:
        """Wait for pending writes and end the writer thread."""
        if self.writer is not None:
            self.writer.shutdown(wait=True)
            self.writer = None
