"""``features`` as a batch run: the same executors, shards, manifest, URLs and Ray as
``process`` (:mod:`fxcli.batch.run`), with a
:class:`~fxcli.engine.feature_engine.FeatureEngine` as the worker and the
``index.jsonl`` of OUTPUT kept up to date (:class:`FeatureIndex`).

- One input file and an OUTPUT named ``*.npy`` / ``*.npz`` / ``*.pt`` (the format's
  extension) writes that one array; another extension is refused (it would have
  become a folder); otherwise OUTPUT is a folder mirroring the inputs.
- The manifest's configuration digest covers the preset, every feature parameter,
  the format, ``image``, the dtype and the NaN policy: a rerun with other
  parameters redoes the files.
- With a URL OUTPUT the index is read before the run and uploaded, merged, after it
  (object stores cannot append); ``image`` needs a local OUTPUT.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from fxcli.batch import remote
from fxcli.batch.manifest import config_digest
from fxcli.batch.remote import Collection, Task, collect_tasks, is_url
from fxcli.batch.run import (
    Batch,
    BatchOptions,
    check_options,
    prepare,
    ray_devices,
    take_shard,
)
from fxcli.engine.feature_engine import FeatureEngine, FeatureResult
from fxcli.engine.feature_params import FEATURE_FORMATS, FeatureParams, check_params
from fxcli.errors import UsageError
from fxcli.io.feature_image import check_matplotlib
from fxcli.io.feature_index import (
    INDEX_NAME,
    append_index,
    read_index,
    relative,
    write_index,
)
from fxcli.io.paths import inputs_and_list


@dataclass(frozen=True)
class FeatureConfig:
    """How to build a :class:`FeatureEngine` (picklable: Ray workers build their own)."""

    preset: Any
    params: FeatureParams
    out_fmt: str = "npy"
    image: bool = False
    chunk_seconds: float | None = None
    nonfinite: str = "error"
    dtype: str = "float32"
    words: Callable[[BaseException], str] = str  # an error's message in a result

    def build(self, device: Any, overwrite: str) -> FeatureEngine:
        return FeatureEngine(
            self.preset, device, self.params, out_fmt=self.out_fmt, image=self.image,
            chunk_seconds=self.chunk_seconds, overwrite=overwrite, nonfinite=self.nonfinite,
            dtype=self.dtype, words=self.words,
        )  # fmt: skip

    def digest(self) -> str:
        """The manifest's configuration digest: everything that changes an array."""
        options = {
            "features": asdict(self.params),
            "format": self.out_fmt,
            "image": self.image,
            "dtype": self.dtype,
            "nonfinite": self.nonfinite,
        }
        return config_digest(self.preset, options)


@dataclass(frozen=True)
class FeatureOptions:
    """Everything a ``features`` run is asked for besides its inputs and OUTPUT.

    ``params``: what to compute; ``preset_name``: a chain to run first (file or
    bundled name, or None); ``out_fmt``: ``npy`` | ``npz`` | ``pt``; ``image``: also a
    PNG per file; ``chunk_seconds``: longer files stream, shorter ones are batched;
    ``nonfinite``: ``error`` | ``zero``; ``dtype``: ``float32`` | ``float64`` (the
    arrays' and the computation's); ``batch``: inputs, shards, manifest, URLs,
    executor (:class:`~fxcli.batch.run.BatchOptions`)."""

    params: FeatureParams = field(default_factory=FeatureParams)
    preset_name: str | None = None
    out_fmt: str = "npy"
    image: bool = False
    chunk_seconds: float | None = None
    nonfinite: str = "error"
    dtype: str = "float32"
    batch: BatchOptions = field(default_factory=BatchOptions)
    #: an error's message in a result (the CLI: its flags rather than library keys)
    words: Callable[[BaseException], str] = str


def _is_file(name: str) -> bool:
    if is_url(name):
        fs, path = remote.url_fs(name)
        return bool(fs.isfile(path))
    return Path(name).is_file()


def feature_tasks(
    inputs: list[str], output: str, opts: BatchOptions, out_fmt: str
) -> tuple[Collection, str]:
    """The run's tasks (not sharded) and the folder (or URL) of its index."""
    ext = FEATURE_FORMATS[out_fmt]
    inputs, listed = inputs_and_list(inputs, opts.input_list, null=opts.null)
    suffix = PurePosixPath(output.rstrip("/")).suffix.lower()
    out_dir = not is_url(output) and Path(output).is_dir()
    single = len(inputs) == 1 and not listed and not out_dir and _is_file(inputs[0])
    if single and suffix and suffix != ext:
        # issue 16: "features in.wav one.png" made a folder one.png
        other = [f for f, e in FEATURE_FORMATS.items() if e == suffix]
        hint = " (or {format} {other})" if other else ""
        name = PurePosixPath(output.rstrip("/")).with_suffix(ext).name
        raise UsageError.about(
            "OUTPUT {output!r}: one input writes one {ext} array: name it {name}" + hint
            + ", or give a folder (an existing one, or a name without an extension)",
            output=output, ext=ext, name=name, other=other[0] if other else "",
        )  # fmt: skip
    if single and suffix == ext:
        name = PurePosixPath(output).name
        parent = (
            output.rstrip("/").rpartition("/")[0] if is_url(output) else str(Path(output).parent)
        )
        return Collection([Task(inputs[0], output, name)], 0, 0), parent
    return collect_tasks(inputs, output, listed, ext), output


class FeatureIndex:
    """``index.jsonl`` of a run's OUTPUT (:mod:`fxcli.io.feature_index`): read before
    the run (a bad index is a usage error), one line appended per finished file
    (local OUTPUT), merged and rewritten (or uploaded) by :meth:`close`. A skipped
    file whose array is missing from the index is described from the array's
    header and the input's (``describe``)."""

    def __init__(self, root: str, params: FeatureParams, describe: Any) -> None:
        self.root = root
        self.params = params
        self.describe = describe
        self.entries: list[dict[str, Any]] = []
        self._modules: dict[float, Any] = {}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if is_url(root):
            self._tmp = tempfile.TemporaryDirectory(prefix="fxcli-index-")
            self.local = Path(self._tmp.name)
            url = self._url()
            with contextlib.suppress(FileNotFoundError):
                if remote.size_of(url) is not None:
                    remote.fetch(url, self.local / INDEX_NAME)
        else:
            self.local = Path(root)
        try:
            self.indexed, self._unterminated = read_index(self.local)
        except UsageError:
            self.cleanup()
            raise

    def _url(self) -> str:
        return self.root.rstrip("/") + "/" + INDEX_NAME

    def _rel(self, path: str) -> str:
        if is_url(self.root):
            base = self.root.rstrip("/") + "/"
            return path[len(base) :] if path.startswith(base) else path
        return relative(Path(path), self.local)

    def _module(self, fs: float) -> Any:
        if fs not in self._modules:
            self._modules[fs] = self.params.build(fs)
        return self._modules[fs]

    def entry(self, res: FeatureResult) -> dict[str, Any]:
        """The index line of a written array."""
        fs = res.feature_sample_rate or 0.0
        module = self._module(fs)
        spec = module.mel if hasattr(module, "from_power") else module
        return {
            "input": res.input,
            "output": self._rel(res.output),
            "image": self._rel(res.image) if res.image else None,
            "shape": res.shape,
            "axes": self.params.axes(),
            "dtype": res.dtype,
            "sample_rate": fs,
            "hop_seconds": spec.hop_length / fs if fs else None,
            "seconds": res.seconds,
            "input_sample_rate": res.sample_rate,
            "input_channels": res.channels,
            "params": self.params.to_json(module, fs),
        }

    def _add(self, res: FeatureResult) -> None:
        entry = self.entry(res)
        self.entries.append(entry)
        if is_url(self.root):
            return  # uploaded merged by close()
        try:
            append_index(self.local, entry, self._unterminated)
            self._unterminated = False
        except OSError:
            pass  # the index is rewritten at the end (and its failure reported there)

    def add(self, res: Any) -> None:
        """Index a finished file (``ok``, or skipped and not indexed yet)."""
        if res.status == "ok":
            self._add(res)
        elif res.status == "skipped" and self._rel(res.output) not in self.indexed:
            with contextlib.suppress(Exception):  # an unreadable array stays unindexed
                self._add(self.describe(res))

    def close(self) -> str | None:
        """Write the merged index; returns its path (None when nothing was added).
        Raises OSError (or a store's error) when it cannot be written."""
        try:
            if not self.entries:
                return None
            path = write_index(self.local, self.entries)
            if is_url(self.root):
                remote.upload_atomic(path, self._url())
                return self._url()
            return str(path)
        finally:
            self.cleanup()

    def cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def prepare_features(
    inputs: list[str], output: str, opts: FeatureOptions
) -> tuple[Batch, FeatureIndex]:
    """The run and its index, every usage, preset and parameter error raised
    (:class:`~fxcli.errors.UsageError`, ``PresetError``) before any file is touched."""
    from fxcli.preset.loader import Preset, load_preset

    bopts = opts.batch
    if opts.out_fmt not in FEATURE_FORMATS:
        raise UsageError.for_option(
            "format", f"{opts.out_fmt!r}: allowed: {', '.join(FEATURE_FORMATS)}"
        )
    cs = opts.chunk_seconds
    if cs is not None and not 0 < cs < float("inf"):
        raise UsageError.for_option("chunk_seconds", f"must be a finite number > 0, got {cs}")
    check_options(bopts)
    if opts.image:
        check_matplotlib()
        if is_url(output):
            raise UsageError.for_option("image", "needs a local OUTPUT folder, not a URL")
    check_params(opts.params)
    preset = load_preset(opts.preset_name) if opts.preset_name else Preset(source="(no preset)")
    found, root = feature_tasks(inputs, output, bopts, opts.out_fmt)
    tasks = take_shard(found.tasks, bopts)
    if bopts.executor == "ray":
        devices = ray_devices(bopts)
    else:
        from fxcli.engine.device import resolve_device

        devices = [resolve_device(bopts.device)]
    cfg = FeatureConfig(
        preset, opts.params, out_fmt=opts.out_fmt, image=opts.image,
        chunk_seconds=opts.chunk_seconds, nonfinite=opts.nonfinite, dtype=opts.dtype,
        words=opts.words,
    )  # fmt: skip

    def default_jobs(devs: Any, n: int) -> int:
        from fxcli.engine.device import default_jobs as jobs_for

        return jobs_for(devs[0], n)

    built: list[FeatureEngine] = []  # the local worker, once prepared

    def describe(res: FeatureResult) -> FeatureResult:
        if not built:  # Ray: the driver has no worker; a CPU one reads the headers
            from fxcli.engine.device import resolve_device

            built.append(cfg.build(resolve_device("cpu"), bopts.overwrite))
        return built[0].describe_existing(res)

    index = FeatureIndex(root, opts.params, describe)  # a bad index: before any file
    try:
        batch = prepare(
            tasks, cfg, bopts, config_sha256=cfg.digest(), devices=devices,
            default_jobs=default_jobs, ignored=found.ignored, in_output=found.in_output,
            words=opts.words,
        )  # fmt: skip
    except BaseException:
        index.cleanup()
        raise
    built.extend(batch.workers)
    return batch, index
