"""Turn the CLI's INPUT arguments into input files (:func:`find_inputs`, for commands
without OUTPUT such as ``analyze``) and (input file, output file) jobs (:func:`collect`).

- A directory is walked (symlinked directories are not followed, so loops
  cannot trap the walk); its tree is mirrored under OUTPUT. Files without an
  audio extension, special files (FIFOs, sockets, devices: never opened),
  dangling or looping symlinks and folders that cannot be listed are skipped
  and counted.
- A file maps to ``OUTPUT/<name>``.
- A glob pattern (quoted, so the shell leaves it alone) maps each match to its
  path relative to the pattern's fixed leading folder.
- ``--input-list FILE`` (or ``-`` for stdin) lists files one per line; blank
  lines and ``#`` comments are ignored. Their relative paths are mirrored, with
  ``..`` and absolute anchors removed, so no output lands outside OUTPUT.
- With a single input file and an OUTPUT that ends in an audio extension (and
  is not an existing folder), OUTPUT is the output file itself; its extension
  must name a container that can be written (``out.m4a`` is a usage error, never a
  folder) and agree with ``--format``.
- ``--format`` replaces each output's extension; ``--keep-extension`` appends it
  instead (``speech.mp3`` -> ``speech.mp3.wav``), the way out when inputs differ
  only in their extension.
- Nothing under OUTPUT is ever an input of folders, globs or input lists (stdin
  too): files whose resolved path lies inside the resolved OUTPUT are dropped and
  counted in ``Collected.in_output`` (so ``'in/**/*.wav' in/out/`` run twice does
  not process its own outputs into ``in/out/out/``). Files named on the command
  line are taken as given.
- Two inputs whose outputs would be the same file, or names that differ only in
  letter case (``Take.wav``/``take.wav``: one file on case-insensitive
  filesystems), are a usage error naming both, whatever the filesystem.
"""

from __future__ import annotations

import glob
import os
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from fxcli.errors import UsageError
from fxcli.io.audio import AudioError
from fxcli.io.containers import check_output_name, is_audio_output_name
from fxcli.io.formats import AUDIO_EXTENSIONS, FORMAT_EXTENSIONS


@dataclass(frozen=True)
class Job:
    src: Path
    dest: Path


@dataclass
class Collected:
    jobs: list[Job] = field(default_factory=list)
    ignored: int = 0  # non-audio or special files found in folders/globs
    in_output: int = 0  # glob / input-list files inside OUTPUT, dropped


def _safe_rel(p: PurePath) -> Path:
    parts = [x for x in p.parts if x not in ("..", ".", "") and x != p.anchor]
    if not parts:
        raise UsageError(f"input path {str(p)!r} has no file name")
    return Path(*parts)


def _is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS


def _walk(root: Path, skip: Path | None) -> tuple[list[Path], int]:
    files: list[Path] = []
    ignored = 0

    def unreadable(exc: OSError) -> None:  # a folder that cannot be listed: counted
        nonlocal ignored
        ignored += 1

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=False):
        d = Path(dirpath)
        if skip is not None:
            dirnames[:] = [n for n in dirnames if (d / n).resolve() != skip]
        dirnames.sort()
        for name in sorted(filenames):
            p = d / name
            try:
                mode = p.stat().st_mode
            except OSError:  # dangling symlink
                ignored += 1
                continue
            if stat.S_ISREG(mode) and _is_audio(p):
                files.append(p)
            else:
                ignored += 1
    return files, ignored


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` (resolved) is ``folder`` (resolved) or lies under it."""
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: not ours to judge here
        return False
    return resolved == folder or folder in resolved.parents


def _case_key(path: Path) -> str:
    """``path`` as case-insensitive filesystems compare names (case folded, and
    composed/decomposed accents alike)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", str(path)).casefold())


def _glob_root(pattern: str) -> Path:
    parts = []
    for part in PurePath(pattern).parts:
        if glob.has_magic(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def read_input_list(source: str, *, null: bool = False) -> list[str]:
    """Paths from a list file (``-`` = stdin): one per line (``#`` comments, blank
    lines skipped, surrounding blanks stripped), or with ``null`` separated by NUL
    bytes as ``find -print0`` writes them (taken exactly; empty names skipped).

    Names are bytes as the filesystem holds them: a name that is not UTF-8 is
    kept (surrogate escapes, :func:`os.fsdecode`). A closed stdin, an unreadable
    list and a NUL byte in a line-separated list (issue 16: a traceback
    ``embedded null byte`` before) are usage errors naming the source."""
    import sys

    name = "stdin" if source == "-" else source
    try:
        if source == "-":
            if sys.stdin is None or sys.stdin.closed:
                raise UsageError("input list from stdin: stdin is closed")
            data = sys.stdin.buffer.read()
        else:
            data = Path(source).read_bytes()
    except (OSError, ValueError, AttributeError) as exc:
        raise UsageError.for_option("input_list", f"{name}: cannot read: {exc}") from None
    if null:
        return [os.fsdecode(n) for n in data.split(b"\0") if n]
    lines = [os.fsdecode(ln.strip()) for ln in data.splitlines()]
    for i, ln in enumerate(lines, 1):
        if "\0" in ln:
            raise UsageError.about(
                "{input_list} {name}: line {i} holds a NUL byte; allowed: one path per "
                "line, or NUL-separated names with {null}/-0 (find -print0)",
                name=name,
                i=i,
            )
    return [ln for ln in lines if ln and not ln.startswith("#")]


def inputs_and_list(
    inputs: list[str], input_list: str | None, *, null: bool = False
) -> tuple[list[str], list[str] | None]:
    """The INPUT arguments without ``-``, and the listed paths: those of
    ``--input-list`` (when given) followed by those read from stdin (when ``-`` is
    among the inputs: ``analyze`` and ``features``; ``process`` reads audio from
    ``-``). ``null``: NUL-separated lists. Raises :class:`UsageError` as
    :func:`read_input_list`."""
    listed = read_input_list(input_list, null=null) if input_list else None
    if "-" in inputs:
        inputs = [i for i in inputs if i != "-"]
        listed = (listed or []) + read_input_list("-", null=null)
    return inputs, listed


@dataclass
class Found:
    """Input files as ``(src, rel)``: ``rel`` is the path mirrored under OUTPUT."""

    files: list[tuple[Path, Path]] = field(default_factory=list)
    ignored: int = 0  # non-audio or special files found in folders/globs
    in_output: int = 0  # glob / input-list files inside OUTPUT, dropped


def find_inputs(
    inputs: list[str],
    listed: list[str] | None = None,
    *,
    output: Path | None = None,
    keep_missing: bool = False,
) -> Found:
    """The input files, in order: folders walked (sorted), globs expanded (sorted),
    files as given, then the ``listed`` paths (taken as given: a missing one fails
    when it is read). With ``output``, files under it are dropped and counted (see
    the module docstring). A missing INPUT that is not a glob is a
    :class:`UsageError`, unless ``keep_missing`` (then it is kept, to fail when read);
    a glob that matches nothing is a :class:`UsageError`. Finding no file at all is
    no error here (``files`` is empty)."""
    out = Found()
    out_resolved = output.resolve() if output is not None else None
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files, ignored = _walk(p, out_resolved)
            out.ignored += ignored
            out.files += [(f, f.relative_to(p)) for f in files]
        elif p.exists():
            out.files.append((p, Path(p.name)))
        elif glob.has_magic(item):
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise UsageError(f"INPUT {item!r}: no files match this pattern")
            root = _glob_root(item)
            for m in matches:
                mp = Path(m)
                if out_resolved is not None and _inside(mp, out_resolved):
                    out.in_output += 0 if mp.is_dir() else 1
                elif mp.is_file() and _is_audio(mp):
                    out.files.append((mp, _safe_rel(mp.relative_to(root))))
                elif not mp.is_dir():
                    out.ignored += 1
        elif keep_missing:
            out.files.append((p, Path(p.name)))
        else:
            raise UsageError(f"INPUT {item!r}: no such file or directory")
    for item in listed or []:
        p = Path(item)
        if out_resolved is not None and _inside(p, out_resolved):
            out.in_output += 1
            continue
        out.files.append((p, _safe_rel(PurePath(item))))
    return out


def collect(
    inputs: list[str],
    output: Path,
    listed: list[str] | None = None,
    out_ext: str | None = None,
    *,
    keep_extension: bool = False,
) -> Collected:
    """Resolve inputs into jobs. ``out_ext`` replaces the extension (``--format``), or
    is appended to the name with ``keep_extension`` (``speech.mp3`` ->
    ``speech.mp3.wav``). A single file OUTPUT must name a writable container that
    agrees with ``out_ext`` (:func:`fxcli.io.containers.check_output_name`)."""
    single_file = (
        len(inputs) == 1
        and not listed
        and Path(inputs[0]).is_file()
        and is_audio_output_name(output)
        and not output.is_dir()
    )
    if single_file:
        check_output_name(output, out_ext)
    found = find_inputs(inputs, listed, output=output)
    out = Collected(ignored=found.ignored, in_output=found.in_output)
    if not found.files:
        if out.in_output:
            raise UsageError(
                f"no input files: the {out.in_output} matching files are all inside "
                f"OUTPUT {output} (outputs are never inputs)"
            )
        raise no_inputs()
    seen: dict[Path, Path] = {}
    seen_case: dict[str, tuple[Path, Path]] = {}  # case key -> (src, dest)
    for src, rel in found.files:
        if single_file:
            dest = output
        else:
            rel = output_rel(rel, out_ext, keep_extension)
            dest = output / rel
        key = dest.resolve()
        if key in seen:
            raise collision(seen[key], src, dest, out_ext, keep_extension)
        seen[key] = src
        ckey = _case_key(key)
        if ckey in seen_case:
            other, other_dest = seen_case[ckey]
            raise UsageError(
                f"inputs {other} and {src} would write {other_dest} and {dest}, which differ "
                "only in letter case (one file on case-insensitive filesystems)"
            )
        seen_case[ckey] = (src, dest)
        out.jobs.append(Job(src, dest))
    _check_links_into_inputs(out.jobs)
    return out


def _check_links_into_inputs(jobs: list[Job]) -> None:
    """An output that is a symlink is written through to its target when replaced
    (:func:`fxcli.io.atomic.write_target`); if that target is the input of ANOTHER
    file of the run, that input could be replaced before it is read: a usage error
    naming both (issue 16). A symlink to its own input is in-place and fine."""
    links = [j for j in jobs if j.dest.is_symlink()]
    if not links:
        return
    inputs = {os.path.realpath(j.src): j.src for j in jobs}
    for j in links:
        other = inputs.get(os.path.realpath(j.dest))
        if other is not None and os.path.realpath(other) != os.path.realpath(j.src):
            raise UsageError(
                f"output {j.dest} is a symlink to {other}, another input of this run; "
                "it would be replaced before it is read (process it in a run of its own)"
            )


def output_rel(rel: PurePath, out_ext: str | None, keep_extension: bool) -> Path:
    """An input's path under OUTPUT with the extension of ``--format`` (``out_ext``):
    replacing the input's, or appended to it (``keep_extension``)."""
    if out_ext is None:
        return Path(rel)
    if keep_extension and rel.suffix.lower() != out_ext:
        return Path(rel.with_name(rel.name + out_ext))
    return Path(rel.with_suffix(out_ext))


def no_inputs() -> UsageError:
    """The error of a run whose inputs name no file."""
    return UsageError.about("no input files (give files, folders, glob patterns or {input_list})")


def collision(
    first: object, second: object, dest: object, out_ext: str | None, keep: bool
) -> UsageError:
    """The error of two inputs mapping to one output, with the way out."""
    hint = ""
    if out_ext is not None and not keep:
        hint = " (add {keep_extension} to name outputs like speech.mp3{ext})"
    return UsageError.about(
        "inputs {first} and {second} would both write {dest}" + hint,
        first=first,
        second=second,
        dest=dest,
        ext=out_ext,
    )


def format_extension(fmt: str) -> str | None:
    """``--format`` to the extension outputs get (None: keep the input's)."""
    return FORMAT_EXTENSIONS.get(fmt)


def skip_existing_output(targets: list[Path], overwrite: str) -> bool:
    """The overwrite policy for a file's outputs (``targets``: the output and any
    side files). Returns True when the file is to be skipped (``"skip"`` and one
    exists); raises :class:`fxcli.io.audio.AudioError` when one exists and the
    policy is ``"refuse"``, or when one is a directory; False otherwise."""
    existing = [p for p in targets if p.exists() or p.is_symlink()]
    if not existing:
        return False
    if overwrite == "skip":
        return True
    if overwrite != "overwrite":
        raise AudioError.about(
            "output {dest} exists (use {overwrite} or {skip_existing})", dest=existing[0]
        )
    if any(p.is_dir() for p in existing):
        raise AudioError(f"output {existing[0]} is a directory")
    return False
