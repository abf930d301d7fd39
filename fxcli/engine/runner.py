"""Process files: design the chain once per sample rate, stream chunks through it
on the device with state carried across chunks, and write atomically.

The result of a file equals whole-file processing for any chunk size: every
step's state is carried from chunk to chunk, the frames steps hold back (lookahead,
fades, resampler delay) are flushed at the end, and analysis steps (normalize,
loudness) get a measuring pass over the chain up to them before the writing pass.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fxcli.dsp.levelmeter import LevelMeter
from fxcli.engine import promises
from fxcli.engine.chain import (
    NonFiniteError,
    flush_chain,
    init_states,
    run_chain,
    run_chain_checked,
)
from fxcli.engine.device import chunk_frames
from fxcli.engine.encoded import (
    encoded_peak_note,
    encoder_rate,
    prepare_output,
    resample_config,
)
from fxcli.engine.pipeline import WriteBehind, prefetch
from fxcli.engine.replay import Replay
from fxcli.engine.transfer import ChunkTransfer, HostArray
from fxcli.io.audio import (
    PCM_BITS,
    AtomicWriter,
    AudioError,
    AudioInfo,
    OutputExistsError,
    output_format,
    probe,
    read_blocks,
)
from fxcli.io.carry import plan_output_meta
from fxcli.io.containers import LossyOptions
from fxcli.io.paths import Job, skip_existing_output
from fxcli.preset.build import build_chain
from fxcli.preset.loader import Preset, PresetError
from fxcli.steps import Gain, Step, chain_output, fuse
from fxcli.steps.base import concat
from fxcli.steps.module import torch_free

if TYPE_CHECKING:
    import torch

ProgressFn = Callable[[int], None]
MIN_RETRY_FRAMES = 1024


class Cancelled(BaseException):
    """The batch was interrupted; raised inside a file's chunk loop so its temp file goes."""


@dataclass
class FileRun:
    """Per-file scheduling state (Engine itself is shared by --jobs threads)."""

    res: FileResult
    max_frames: int
    #: the input's identity when it was probed (see :func:`input_identity`)
    input_id: tuple[int, int, int, int] | None = None
    #: the analysis steps' measurements (filled by the measuring passes)
    measured: list[promises.Measured] = field(default_factory=list)
    #: measures the input in the first pass that reads it (None: no promises)
    in_meter: LevelMeter | None = None
    #: whether a pass has read the input (its meter and non-finite counts are taken)
    input_read: bool = False
    #: keep the last aimed loudness step's replay for the writing pass (:class:`Tail`)
    keep_tail: bool = False
    tail: Tail | None = None


@dataclass
class Tail:
    """The writing pass from a measuring pass's kept chunks: ``steps`` (the chain from
    the last analysis step on, resolved and fused) over ``replay`` (the chunks that
    entered that step). Used when the last analysis step aimed its gain through a
    limiter: the output is then exactly what the last aim measured, and the file is
    not read, nor the chain before that step run, a further time."""

    replay: Replay
    steps: list[Step]
    #: channels of the kept chunks (the chain before the step may remix)
    channels: int
    #: when the limiter ends the chain: its output at the chosen gain, kept from the
    #: aim's last try (then ``steps`` is empty: the chunks are the finished output)
    out: Replay | None = None

    def close(self) -> None:
        self.replay.close()
        if self.out is not None:
            self.out.close()


@dataclass
class FileResult:
    """What happened to one file; ``to_json()`` is the ``--json`` line."""

    input: str
    output: str
    status: str  # ok | failed | skipped
    frames: int = 0
    seconds: float = 0.0
    sample_rate: int | None = None
    channels: int | None = None
    subtype: str | None = None
    clipped: int = 0
    output_frames: int = 0
    nonfinite_replaced: int = 0
    output_sample_rate: int | None = None
    output_channels: int | None = None
    elapsed_s: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    #: the input's sample format (``subtype`` is the output's, kept for compatibility)
    input_subtype: str | None = None
    #: measured levels (``fxcli.engine.promises.check``); None when nothing was measured
    levels: dict[str, Any] | None = None
    #: the notes of promises missed (also in ``notes``); ``--strict`` fails on any
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` line: every field, plus ``input_sample_rate``,
        ``input_channels`` and ``output_subtype`` so that input and output read
        unambiguously (``sample_rate``/``channels`` are the input's, ``subtype`` the
        output's)."""
        d = asdict(self)
        d["input_sample_rate"], d["input_channels"] = self.sample_rate, self.channels
        d["output_subtype"] = self.subtype
        return d


class Engine:
    """Runs one preset over many files on one device.

    ``overwrite``: ``"refuse"`` (default), ``"overwrite"`` (atomic replace) or ``"skip"``.
    ``nonfinite``: ``"error"`` (a NaN/Inf input sample fails the file, naming it) or
    ``"zero"`` (replaced by 0, counted in ``FileResult.nonfinite_replaced``).
    ``lossy``: quality/bitrate of lossy outputs (:mod:`fxcli.engine.encoded`).
    Chains are designed once per sample rate and kept on the device.
    """

    def __init__(
        self,
        preset: Preset,
        device: torch.device,
        *,
        chunk_seconds: float | None = None,
        fmt: str = "same",
        subtype: str = "same",
        overwrite: str = "refuse",
        nonfinite: str = "error",
        lossy: LossyOptions | None = None,
        tags: bool = True,
        strict: bool = False,
        words: Callable[[BaseException], str] = str,
    ) -> None:
        self.preset = preset
        #: an error's message in a file's result (the CLI: options named as its flags)
        self.words = words
        self.lossy = lossy
        self.tags = tags  # copy the input's tags to the output (False: none)
        #: a result with warnings (missed promises) fails, its output not written
        self.strict = strict
        if nonfinite not in ("error", "zero"):
            raise ValueError(f"nonfinite: got {nonfinite!r}; allowed: error, zero")
        self.nonfinite = nonfinite
        self.device = device
        self.chunk_seconds = chunk_seconds
        self.fmt = fmt
        self.subtype = subtype
        self.overwrite = overwrite
        self._chains: dict[tuple[int, int, int | None], list[Step] | PresetError] = {}
        self._lock = threading.Lock()
        self._fused: dict[int, list[Step]] = {}  # by id() of a cached chain_for() list
        self.cancel = threading.Event()
        self.transfer = ChunkTransfer(device)

    # ------------------------------------------------------------------ chain
    def chain_for(
        self, samplerate: int, channels: int, resample_to: int | None = None
    ) -> list[Step]:
        """The designed (unfused) steps for input at this rate and channel count, on
        the device; cached (design happens once per rate and channel count).
        ``resample_to``: a final resample step added (an encoder's rate, e.g. Opus)."""
        key = (samplerate, channels, resample_to)
        with self._lock:
            cached = self._chains.get(key)
            if cached is None:
                try:
                    cfgs = self.preset.steps
                    if resample_to is not None:
                        cfgs = [*cfgs, resample_config(resample_to, len(cfgs), self.preset.source)]
                    steps = build_chain(cfgs, samplerate, channels)
                    cached = [s.to(self.device) for s in steps]
                except PresetError as exc:
                    cached = exc
                self._chains[key] = cached
        if isinstance(cached, PresetError):
            raise cached
        return cached

    def run_chunk(
        self, steps: list[Step], x: torch.Tensor, states: list[Any], offset: int, run: FileRun
    ) -> tuple[torch.Tensor, list[Any]]:
        """Run one chunk; on device out-of-memory, retry it in halves from the saved
        state (states are never mutated, so nothing advances twice)."""
        if self.cancel.is_set():
            raise Cancelled()
        n = x.shape[-1]
        if n > run.max_frames:
            half = n // 2
            y1, s1 = self.run_chunk(steps, x[..., :half], states, offset, run)
            y2, s2 = self.run_chunk(steps, x[..., half:], s1, offset + half, run)
            return concat([y1, y2]), s2
        try:
            return run_chain_checked(steps, x, states, offset)
        except out_of_memory():
            if n <= MIN_RETRY_FRAMES:
                raise
            if not isinstance(x, np.ndarray) and x.device.type == "cuda":
                import torch

                torch.cuda.empty_cache()
            run.max_frames = n // 2
            note = "out of device memory: chunks retried in smaller parts from the saved state"
            if note not in run.res.notes:
                run.res.notes.append(note)
            return self.run_chunk(steps, x, states, offset, run)

    def _resolve_analysis(
        self, steps: list[Step], info: AudioInfo, frames: int, run: FileRun
    ) -> list[Step]:
        """Replace each analysis step by its resolved form via a measuring pass, and fuse.
        Without analysis steps the fused chain is the same for every file: cached."""
        if not any(step.needs_analysis for step in steps):
            with self._lock:
                key = id(steps)
                if key not in self._fused:
                    self._fused[key] = fuse(steps)
                return self._fused[key]

        def measure_pass(head: list[Step]) -> Iterator[torch.Tensor]:
            states = init_states(head, (info.channels,), self.device)
            offset = 0
            # the first read takes the input's meter and non-finite counts when the
            # writing pass is this engine's (keep_tail): a subclass reading on its own
            # (features) counts in its own pass
            first = run.keep_tail and not run.input_read
            run.input_read = run.input_read or first
            res, meter = (run.res, run.in_meter) if first else (None, None)
            for block in prefetch(lambda: self._uploads(info, frames, res, meter)):
                x = self.transfer.adopt(block)
                y, states = self.run_chunk(head, x, states, offset, run)
                offset += x.shape[-1]
                yield y
            tail, _ = flush_chain(head, states, info_dtype(info))
            if tail is not None:
                yield tail

        kept: list[Tail] | None = [] if run.keep_tail else None
        fused = resolve_analysis(
            steps,
            measure_pass,
            self.device,
            measured=run.measured,
            keep=kept,
            stream=(info.samplerate, info.channels),
        )
        if kept:
            run.tail = kept[0]
        return fused

    def _uploads(
        self, info: AudioInfo, frames: int, res: FileResult | None, meter: LevelMeter | None = None
    ) -> Iterator[torch.Tensor]:
        """Input blocks on the device (runs in the reader thread: on CUDA the upload
        from pinned memory overlaps the previous chunk's compute); ``meter`` measures
        them on the way."""
        for block in self.read_chunks(info, frames, res):
            if meter is not None:
                meter.update(block)
            yield self.transfer.upload(block)

    def read_chunks(
        self, info: AudioInfo, frames: int, res: FileResult | None
    ) -> Iterator[np.ndarray]:
        """Input blocks; with ``nonfinite="zero"`` NaN/Inf become 0 (counted into ``res``)."""
        for block in read_blocks(info, frames):
            if self.nonfinite == "zero" and block.dtype.kind == "f":
                bad = ~np.isfinite(block)
                n_bad = int(np.count_nonzero(bad))
                if n_bad:
                    block = np.where(bad, 0, block).astype(block.dtype)
                    if res is not None:
                        res.nonfinite_replaced += n_bad
            yield block

    # ------------------------------------------------------------------ files
    def process(
        self, job: Job, progress: ProgressFn | None = None, *, dry_run: bool = False
    ) -> FileResult:
        """Process one file; never raises for per-file problems (returns a failed result).

        :class:`Cancelled` (after ``cancel`` is set) propagates once the partial output
        is removed. ``dry_run``: everything up to the first read of the audio (the
        output policy, the header, the output's container and subtype, the chain
        designed for the file's rate and channels, the encoder's limits), then a result
        with status ``planned`` and nothing written or measured.
        """
        if self.cancel.is_set():
            raise Cancelled()
        t0 = time.perf_counter()
        res = FileResult(str(job.src), str(job.dest), "ok")
        try:
            if skip_existing_output([job.dest], self.overwrite):
                res.status = "skipped"
                res.notes.append("output exists")
                return res
            try:
                input_id = input_identity(job.src)  # before the first read
            except AudioError:
                probe(job.src)  # says why, in its words
                raise
            info = probe(job.src)
            res.sample_rate, res.channels = info.samplerate, info.channels
            res.input_subtype = info.subtype
            ofmt = output_format(info, self.fmt, self.subtype, self.preset.subtype, job.dest)
            res.subtype = ofmt.subtype
            if ofmt.note:
                res.notes.append(ofmt.note)
            steps = self.chain_for(info.samplerate, info.channels)
            out_stream = chain_output(steps, info.samplerate, info.channels)
            to_rate = encoder_rate(ofmt.subtype, out_stream[0])
            if to_rate is not None:  # Opus at 44.1 kHz: resampled to 48 kHz, as FFmpeg does
                steps = self.chain_for(info.samplerate, info.channels, to_rate)
                out_stream = chain_output(steps, info.samplerate, info.channels)
            ofmt = prepare_output(ofmt, self.lossy, info, *out_stream)
            if dry_run:
                res.status, res.subtype = "planned", ofmt.subtype
                res.output_sample_rate, res.output_channels = round(out_stream[0]), out_stream[1]
                res.frames, res.seconds = info.frames, round(info.frames / info.samplerate, 6)
                res.elapsed_s = round(time.perf_counter() - t0, 6)
                return res
            frames = chunk_frames(self.device, info.samplerate, info.channels, self.chunk_seconds)
            run = FileRun(res, frames, input_id, keep_tail=True)
            if promises.has_promises(self.chain_for(info.samplerate, info.channels)):
                run.in_meter = LevelMeter(info.channels, info.samplerate)
            try:
                steps = self._resolve_analysis(steps, info, frames, run)
                check_input_unchanged(job.src, input_id)  # between measuring and writing
                self._write(job, info, steps, frames, ofmt, run, progress)
            finally:
                if run.tail is not None:
                    run.tail.close()
        except OutputExistsError as exc:
            # the output appeared while this file was processed (another run?): never
            # replaced unless overwriting; when skipping existing outputs, a skip
            if self.overwrite == "skip":
                res.status = "skipped"
                res.notes.append("output appeared during processing (another run?)")
            else:
                res.status, res.error = "failed", self.words(exc)
        except (AudioError, PresetError, NonFiniteError, promises.PromiseMissed) as exc:
            res.status, res.error = "failed", self.words(exc)
        except out_of_memory():
            res.status, res.error = (
                "failed",
                (f"out of device memory even for chunks of {MIN_RETRY_FRAMES} frames"),
            )
        res.elapsed_s = round(time.perf_counter() - t0, 6)
        return res

    def _write(
        self,
        job: Job,
        info: AudioInfo,
        steps: list[Step],
        frames: int,
        ofmt: Any,
        run: FileRun,
        progress: ProgressFn | None,
    ) -> None:
        res = run.res
        states = init_states(steps, (info.channels,), self.device)
        offset = 0
        rate, channels = chain_output(steps, info.samplerate, info.channels)
        if rate != int(rate):
            raise PresetError(
                f"{self.preset.source}: the chain's output rate {rate:g} Hz is not whole"
            )
        res.output_sample_rate, res.output_channels = int(rate), channels
        dither = self.preset.dither or default_dither(ofmt.subtype)
        hint = round(info.frames * rate / info.samplerate)
        meta = plan_output_meta(
            job.src,
            info.format,
            info.samplerate,
            info.channels,
            ofmt.format,
            int(rate),
            channels,
            keep_tags=self.tags,
        )
        with AtomicWriter(
            job.dest,
            int(rate),
            channels,
            ofmt,
            dither,
            frames_hint=hint,
            replace=self.overwrite == "overwrite",
            meta=meta,
        ) as writer:
            if writer.stale_removed:
                res.notes.append(
                    f"removed {writer.stale_removed} stale temporary files of dead runs "
                    f"in {job.dest.parent}"
                )

            designed = self.chain_for(info.samplerate, info.channels)
            in_meter, out_meter = run.in_meter, None
            if in_meter is not None:  # measured while reading and writing
                out_meter = LevelMeter(channels, rate)

            def write(get: HostArray) -> None:
                y = get()
                writer.write(y)
                if out_meter is not None:
                    out_meter.update(y)

            with WriteBehind(write) as behind:
                if run.tail is not None:  # from the kept chunks: the file is not read again
                    steps = run.tail.steps
                    states = init_states(steps, (run.tail.channels,), self.device)
                    kept = run.tail.replay if run.tail.out is None else run.tail.out
                    blocks: Iterator[Any] = iter(kept)
                else:
                    first, run.input_read = not run.input_read, True
                    meter, counts = (in_meter, res) if first else (None, None)
                    blocks = prefetch(lambda: self._uploads(info, frames, counts, meter))
                try:
                    for block in blocks:
                        x = self.transfer.adopt(block)
                        y, states = self.run_chunk(steps, x, states, offset, run)
                        behind.submit(self.transfer.download(y))
                        offset += x.shape[-1]
                        if progress:
                            progress(x.shape[-1])
                finally:
                    # the reader thread stops now, also when a chunk raised (Cancelled):
                    # the traceback keeps this frame, and with it the generator, alive
                    close = getattr(blocks, "close", None)
                    if close is not None:
                        close()
                tail, states = flush_chain(steps, states, info_dtype(info))
                if tail is not None:
                    behind.submit(self.transfer.download(tail))
                behind.finish()
            res.levels, res.warnings = promises.check(
                designed,
                run.measured,
                fs=info.samplerate,
                frames=offset,
                inp=in_meter,
                out=out_meter,
                clipped=writer.clipped,
            )
            if self.strict and res.warnings:
                raise promises.PromiseMissed.of(res.warnings)
            if run.input_id is not None:  # None: features' runs, which write no audio
                check_input_unchanged(job.src, run.input_id)  # after the writing pass
            writer.commit()
        peak_note = encoded_peak_note(job.dest, ofmt, self.preset.steps) if writer.frames else None
        if peak_note:  # measured on the encoded file, so after the commit
            res.warnings.append(peak_note)
            if self.strict:
                res.status = "failed"
                missed = promises.PromiseMissed.of([peak_note])
                res.error = self.words(missed) + " (output written: measured after encoding)"
        res.frames = offset
        res.seconds = round(offset / info.samplerate, 6)
        res.output_frames = writer.frames
        res.clipped = writer.clipped
        res.notes.extend([*meta.notes, *writer.notes])
        if writer.rf64:
            res.notes.append("written as RF64: the output passes a RIFF header's 4 GiB")
        if info.recovered is not None:
            res.notes.append(info.recovered.note)
        declared = info.declared_frames
        if declared is not None:
            res.notes.append(
                f"truncated: the header declares {declared} frames, {offset} were present"
            )
        if res.nonfinite_replaced:
            res.notes.append(f"replaced {res.nonfinite_replaced} non-finite input samples with 0")
        res.notes.extend(res.warnings)


def input_identity(path: Any) -> tuple[int, int, int, int]:
    """``(size, mtime_ns, device, inode)`` of an input file, to notice it being
    rewritten or replaced while it is processed (probe, measuring and writing passes
    each read it)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise AudioError(f"cannot open: {exc.strerror or exc}") from None
    return st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino


def check_input_unchanged(path: Any, before: tuple[int, int, int, int]) -> None:
    """Raise :class:`AudioError` when ``path`` is no longer the file ``before`` described."""
    try:
        now = input_identity(path)
    except AudioError as exc:
        raise AudioError(
            f"input changed while it was processed ({exc}): {path}; output not written"
        ) from None
    if now != before:
        what = [n for k, n in enumerate(("size", "mtime")) if before[k] != now[k]]
        if now[2:] != before[2:]:
            what.append("replaced by another file")
        raise AudioError(
            f"input changed while it was processed ({'/'.join(what)}): {path}; output not written"
        )


def default_dither(subtype: str) -> str:
    """TPDF dither when writing PCM of 16 bits or fewer (like SoX), else none."""
    bits = PCM_BITS.get(subtype)
    return "tpdf" if bits is not None and bits <= 16 else "none"


def out_of_memory() -> tuple[type[BaseException], ...]:
    """The device out-of-memory errors to catch: torch's where torch is loaded (the
    torch-free CPU path has none; host memory errors are not retried)."""
    torch_mod = sys.modules.get("torch")
    return (torch_mod.OutOfMemoryError,) if torch_mod is not None else ()


def info_dtype(info: AudioInfo) -> Any:
    """The compute dtype of a file's samples: numpy's on the torch-free path."""
    if torch_free():
        return info.compute_dtype
    import torch

    return torch.float64 if info.compute_dtype == np.float64 else torch.float32


def resolve_analysis(
    steps: list[Step],
    measure_pass: Callable[[list[Step]], Iterator[torch.Tensor]],
    device: torch.device | str,
    *,
    measured: list[promises.Measured] | None = None,
    keep: list[Tail] | None = None,
    stream: tuple[float, int] | None = None,
) -> list[Step]:
    """Replace each analysis step (normalize, loudness) by its resolved gain, then fuse.

    ``measure_pass(head)`` yields the output of the steps ``head`` (everything before
    the analysis step, earlier analysis steps already resolved) over the whole
    signal, chunk by chunk; the step folds those chunks into its measurement.

    A ``loudness`` step directly followed by a peak limiter aims through it: the
    limiter lowers the loudness it receives, so the gain is refined by measuring the
    limiter's output (:meth:`~fxcli.steps.loudness.Loudness.aim`, a few more
    tries) until the output meets the target within 0.05 LU. The measuring pass's
    chunks are kept (:class:`fxcli.engine.replay.Replay`: in memory up to a budget,
    then in an anonymous temporary file), so each try runs only the gain, the
    limiter and the meter over them, not the chain before them again.

    ``measured``: a list that gets each analysis step's measurement and gain (for the
    report, :mod:`fxcli.engine.promises`). ``keep``: when the last analysis step aims
    through a limiter and the chain before it keeps the input's rate (``stream``:
    the input's rate and channels), a :class:`Tail` (its replay, open: the caller
    closes it, and the chain from that step on) is appended instead of the replay
    being dropped.
    """
    steps = list(steps)
    last = max((k for k, s in enumerate(steps) if s.needs_analysis), default=-1)
    tail_at, tail_replay, tail_channels = -1, None, 0
    tail_out: Replay | None = None
    for k, step in enumerate(steps):
        if not step.needs_analysis:
            continue
        nxt = steps[k + 1] if k + 1 < len(steps) else None
        aim = getattr(step, "aim", None)
        if aim is None or not getattr(nxt, "peak_limiter", False):
            acc = None
            for y in measure_pass(fuse(steps[:k])):
                acc = step.measure(acc, y)
            resolved, aimed = step.resolve(acc), False
        else:
            assert nxt is not None
            head = fuse(steps[:k])
            out = chain_output(head, *stream) if stream is not None else None
            # kept for the writing pass: the last analysis step, the rate unchanged before it
            keeping = (
                keep is not None
                and k == last
                and out is not None
                and stream is not None
                and out[0] == stream[0]
            )
            # the limiter ends the chain: each try's output is kept (one at a time), the
            # last try's is the finished output when the aim settles on its gain
            tries: list[tuple[float, Replay]] | None = (
                [] if keeping and k + 2 == len(steps) else None
            )
            replay = Replay()
            try:
                acc = None
                for y in measure_pass(head):
                    replay.add(y)
                    acc = step.measure(acc, y)
                resolved = aim(
                    acc,
                    functools.partial(
                        _measure_replay, step, replay, limiter=nxt, device=device, tries=tries
                    ),
                )
            except BaseException:
                replay.close()
                for _, kept in tries or []:
                    kept.close()
                raise
            last_try = tries.pop() if tries else None
            if keeping and out is not None:
                tail_at, tail_replay, tail_channels = k, replay, out[1]
                if last_try is not None and last_try[0] == float(getattr(resolved, "gain", 0.0)):
                    tail_out, last_try = last_try[1], None
            else:
                replay.close()
            if last_try is not None:
                last_try[1].close()
            aimed = True
        if measured is not None:
            gain = float(getattr(resolved, "gain", 1.0))
            measured.append(promises.Measured(k, step, acc, gain, aimed))
        steps[k] = resolved.to(device)
    if keep is not None and tail_replay is not None:
        if tail_out is not None:
            keep.append(Tail(tail_replay, [], tail_channels, tail_out))
        else:
            keep.append(Tail(tail_replay, fuse(steps[tail_at:]), tail_channels))
    return fuse(steps)


def _measure_replay(
    step: Step,
    replay: Replay,
    gain: float,
    *,
    limiter: Step,
    device: torch.device | str,
    tries: list[tuple[float, Replay]] | None = None,
) -> Any:
    """``step``'s measurement of ``limiter(gain * chunk)`` over the replayed chunks
    (and the limiter's tail at the end). ``tries``: gets ``(gain, output chunks)`` of
    this try (the previous try's output is dropped first: one is kept at a time)."""
    chain = [Gain.factor(gain).to(device), limiter]
    acc: Any = None
    states: list[Any] | None = None
    dtype: Any = None
    kept: Replay | None = None
    if tries is not None:
        while tries:
            tries.pop()[1].close()
        kept = Replay()
        tries.append((gain, kept))
    for x in replay:
        if states is None:
            states = init_states(chain, tuple(x.shape[:-1]), device)
            dtype = x.dtype
        y, states = run_chain(chain, x, states)
        acc = step.measure(acc, y)
        if kept is not None:
            kept.add(y)
    if states is not None:
        tail, _ = flush_chain(chain, states, dtype)
        if tail is not None:
            acc = step.measure(acc, tail)
            if kept is not None:
                kept.add(tail)
    return acc


def process_array(
    steps: list[Step],
    x: np.ndarray | torch.Tensor,
    chunk: int | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Run designed steps over a whole ``(channels, frames)`` array in chunks of
    ``chunk`` frames (None: one chunk). Analysis steps are resolved first.
    Used by tests and the library to check chunked == whole-file processing."""
    import torch

    t = torch.as_tensor(x).to(device)

    def measure_pass(head: list[Step]) -> Iterator[torch.Tensor]:
        y, states = run_chain(head, t, init_states(head, tuple(t.shape[:-1]), t.device))
        tail, _ = flush_chain(head, states, t.dtype)
        yield y if tail is None else torch.cat([y, tail], dim=-1)

    steps = resolve_analysis([s.to(device) for s in steps], measure_pass, t.device)
    states = init_states(steps, tuple(t.shape[:-1]), t.device)
    n = t.shape[-1]
    chunk = n if not chunk else chunk
    outs = []
    for start in range(0, max(n, 1), max(chunk, 1)):
        y, states = run_chain(steps, t[..., start : start + chunk], states)
        outs.append(y)
    tail, _ = flush_chain(steps, states, t.dtype)
    if tail is not None:
        outs.append(tail)
    return outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)
