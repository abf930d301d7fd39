"""One self-contained HTML page for a batch (``fxcli process ... --report PATH.html``).

The page holds, per file, the ``--json`` record's figures (input and output
integrated loudness in LUFS and true peak in dBTP, the gain the analysis steps
applied in dB, the loudness change in LU, clipped samples, length, status, notes and
the error of a failed file) in a table sortable by any column (a click on a header;
numbers sort as numbers, empty cells last), the run's counts at the top, and a small
inline SVG per file: its loudness over time, input and output, on axes labelled in
seconds and LUFS (:mod:`fxcli.measure.loudness_svg`).

Self-contained: inline CSS, a little inline JavaScript, inline SVG, no reference to
anything outside the page (a Content-Security-Policy forbids loading anything), so it
opens offline, from a mail attachment, or from a CI artifact. File names and notes
are escaped twice: undecodable bytes and control characters become ``\\xNN`` (as
``fxcli.io.display.shown`` writes them on a terminal), then HTML-escaped.

The curves are measured after the run (the numpy meter, no torch), only for local
files (URLs and pipes get a note instead), within :data:`PLOT_BUDGET_S` seconds of
metering for the whole batch (later files get a note). An interrupted run's page
says so and draws no curves.

The URL fragment ``#sort=COLUMN`` (``#sort=COLUMN:desc``) sorts the table when the
page opens: a link to a sorted view, and the hook the headless-browser test uses.
"""

from __future__ import annotations

import datetime
import html
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fxcli.batch.remote import is_url
from fxcli.errors import AudioError, UsageError
from fxcli.io.display import shown
from fxcli.measure.loudness_svg import Curve, loudness_curve, loudness_svg

__all__ = [
    "COLUMNS",
    "PLOT_BUDGET_S",
    "BatchReport",
    "RunInfo",
    "check_report_path",
    "escape_text",
    "measure_plots",
    "render",
    "stopped_text",
]

#: seconds of metering (reading files again) spent on curves for the whole batch
PLOT_BUDGET_S = 120.0

#: ``(key, header, kind)``: the table's columns; ``kind`` ``num`` sorts numerically
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("n", "#", "num"),
    ("file", "File", "text"),
    ("status", "Status", "text"),
    ("in_lufs", "In LUFS", "num"),
    ("out_lufs", "Out LUFS", "num"),
    ("in_tp", "In TP dBTP", "num"),
    ("out_tp", "Out TP dBTP", "num"),
    ("gain", "Gain dB", "num"),
    ("change", "Change LU", "num"),
    ("clipped", "Clipped", "num"),
    ("seconds", "Length s", "num"),
    ("notes", "Notes / error", "text"),
    ("plot", "Loudness over time", "none"),
)


def escape_text(value: Any) -> str:
    """``value`` as HTML text: undecodable bytes and control characters as ``\\xNN``,
    then ``& < > " '`` escaped (safe inside elements and quoted attributes)."""
    return html.escape(shown(str(value)), quote=True)


def check_report_path(path: str, taken: Iterable[str] = (), output: str | None = None) -> Path:
    """The report's path, or :class:`UsageError` (option ``report``) before any file
    is processed: a local path (no URL, no ``-``) that is not a directory, not one of
    ``taken`` (the run's inputs and outputs), in an existing folder this process may
    write. ``output``: the run's OUTPUT folder, which the run creates: a report in it
    (``out/report.html``) may name a folder that does not exist yet (its nearest
    existing parent must be writable)."""
    if path in ("", "-") or is_url(path):
        raise UsageError.for_option(
            "report", f"{path!r}: a local file path is needed (e.g. report.html)"
        )
    p = Path(path)
    if p.is_dir():
        raise UsageError.for_option("report", f"{path}: is a directory; give a file (report.html)")
    if p.exists() and not p.is_file():
        raise UsageError.for_option("report", f"{path}: not a regular file")
    taken = list(taken)
    folder = p.parent
    if not folder.is_dir():
        if not _in_output_folder(folder, output, taken):
            raise UsageError.for_option("report", f"{path}: folder {folder} does not exist")
        while not folder.exists():
            folder = folder.parent
        if not folder.is_dir():
            raise UsageError.for_option("report", f"{path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError.for_option("report", f"{path}: folder {folder} is not writable")
    real, base = os.path.realpath(p), os.path.basename(os.path.realpath(p))
    for name in taken:
        if is_url(name) or os.path.basename(name) != base and not os.path.islink(name):
            continue
        if os.path.realpath(name) == real:
            raise UsageError.for_option(
                "report", f"{path}: is an input or output of the run; give another file"
            )
    return p


def _in_output_folder(folder: Path, output: str | None, taken: list[str]) -> bool:
    """Whether ``folder`` is (under) ``output``, a folder the run will create (not an
    output file: one of ``taken``)."""
    if output is None or is_url(output):
        return False
    out = os.path.realpath(output)
    real = os.path.realpath(folder)
    if real != out and not real.startswith(out.rstrip(os.sep) + os.sep):
        return False
    return all(os.path.realpath(n) != out for n in taken if not is_url(n))


# ----------------------------------------------------------------------------- page
@dataclass
class RunInfo:
    """What the page says about the run: the preset, fxcli's version, when it began
    (UTC), its wall time (s), the files the input folders held that were not audio,
    and the signal name that stopped it (``None``: it ran to the end)."""

    preset: str
    version: str
    started: str
    wall_s: float
    ignored: int = 0
    stopped: str | None = None


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def _level(rec: dict[str, Any], side: str, key: str) -> float | None:
    levels = rec.get("levels") or {}
    return _num((levels.get(side) or {}).get(key))


def _row_values(rec: dict[str, Any]) -> dict[str, float | None]:
    """The numeric cells of a record (None: not measured)."""
    steps = (rec.get("levels") or {}).get("steps") or []
    gains = [g for g in (_num(s.get("gain_db")) for s in steps) if g is not None]
    in_l, out_l = _level(rec, "input", "lufs"), _level(rec, "output", "lufs")
    rate = rec.get("sample_rate")
    return {
        "in_lufs": in_l,
        "out_lufs": out_l,
        "in_tp": _level(rec, "input", "true_peak_dbtp"),
        "out_tp": _level(rec, "output", "true_peak_dbtp"),
        "gain": round(sum(gains), 2) if gains else None,
        "change": round(out_l - in_l, 2) if in_l is not None and out_l is not None else None,
        "clipped": _num(rec.get("clipped")) if rec.get("status") == "ok" else None,
        "seconds": round(rec.get("frames", 0) / rate, 2) if rate and rec.get("frames") else None,
    }


def _status(rec: dict[str, Any]) -> str:
    """``ok``, ``warning`` (ok with missed promises), ``failed``, ``skipped`` or
    ``finished`` (skipped: done in an earlier run of the manifest)."""
    s = str(rec.get("status", ""))
    if s == "ok" and rec.get("warnings"):
        return "warning"
    if s == "skipped" and any("finished in the manifest" in str(n) for n in rec.get("notes", [])):
        return "finished"
    return s


def _cell(key: str, value: float | None, fmt: str = "{:.2f}") -> str:
    if value is None:
        return f'<td class="{key} num" data-v="">\u2013</td>'
    shown = f"{int(value)}" if key in ("n", "clipped") else fmt.format(value)
    return f'<td class="{key} num" data-v="{value!r}">{shown}</td>'


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px}
.meta{color:#555;margin:0 0 10px}
.banner{padding:8px 12px;border-radius:4px;margin:8px 0;font-weight:600}
.banner.stopped{background:#fde2e1;color:#8a1c12;border:1px solid #e0a39c}
#summary{display:flex;gap:8px;padding:0;margin:8px 0 14px;list-style:none;flex-wrap:wrap}
#summary li{padding:6px 12px;border-radius:4px;background:#eef1f5;font-weight:600}
#summary li.failed{background:#fde2e1;color:#8a1c12}
#summary li.warning{background:#fff3cd;color:#6b5200}
#summary li.ok{background:#e3f4e6;color:#1d5e2b}
table{border-collapse:collapse;width:100%}
th,td{border:1px solid #d5d9df;padding:4px 5px;vertical-align:top}
th{background:#f3f5f8;cursor:pointer;user-select:none;position:sticky;top:0}
th[data-type=none]{cursor:default}
th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.file{overflow-wrap:anywhere;min-width:14em;max-width:28em}
td.file .out{color:#666;font-size:12px}
tr.failed{background:#fff0ef}
tr.warning{background:#fffaea}
tr.skipped,tr.finished{color:#777}
.badge{display:inline-block;padding:1px 6px;border-radius:3px;font-size:12px;font-weight:600}
.badge.ok{background:#e3f4e6;color:#1d5e2b}
.badge.warning{background:#fff3cd;color:#6b5200}
.badge.failed{background:#c62828;color:#fff}
.badge.skipped,.badge.finished{background:#e8e8e8;color:#555}
td.notes{min-width:10em;max-width:30em;font-size:12px}
td.notes .error{color:#b3261e;font-weight:600}
td.notes .warn{color:#7a5b00}
td.notes ul{margin:0;padding-left:16px}
svg.plot{display:block;background:#fcfcfd}
svg.plot .axes line{stroke:#555;stroke-width:1}
svg.plot text{font-size:9px;fill:#444}
svg.plot .curve{fill:none;stroke-width:1.4}
svg.plot .curve.input{stroke:#1f77b4}
svg.plot .curve.output{stroke:#e4572e}
svg.plot .legend.input{fill:#1f77b4}
svg.plot .legend.output{fill:#e4572e}
.noplot{color:#888;font-size:12px}
"""

_JS = """
(function () {
  var table = document.getElementById("files");
  var heads = table.tHead.rows[0].cells;
  function key(cell, num) {
    var v = cell.getAttribute("data-v");
    if (num) { return v === null || v === "" ? null : parseFloat(v); }
    return (v !== null ? v : cell.textContent).toLowerCase();
  }
  function sortBy(col, desc) {
    var idx = -1;
    for (var i = 0; i < heads.length; i++) {
      if (heads[i].getAttribute("data-col") === col) { idx = i; }
    }
    if (idx < 0 || heads[idx].getAttribute("data-type") === "none") { return false; }
    var num = heads[idx].getAttribute("data-type") === "num";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[idx], num), y = key(b.cells[idx], num);
      if (x === null || y === null) { return x === y ? 0 : (x === null ? 1 : -1); }
      var c = x < y ? -1 : (x > y ? 1 : 0);
      return desc ? -c : c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    for (var j = 0; j < heads.length; j++) { heads[j].removeAttribute("aria-sort"); }
    heads[idx].setAttribute("aria-sort", desc ? "descending" : "ascending");
    table.setAttribute("data-sorted", col + (desc ? ":desc" : ":asc"));
    return true;
  }
  for (var i = 0; i < heads.length; i++) {
    heads[i].addEventListener("click", function () {
      var asc = this.getAttribute("aria-sort") === "ascending";
      sortBy(this.getAttribute("data-col"), asc);
    });
  }
  var m = /^#sort=([a-z_]+)(:desc)?$/.exec(window.location.hash);
  if (m) { sortBy(m[1], !!m[2]); }
  window.fxcliSort = sortBy;
})();
"""

_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)


def _notes_cell(rec: dict[str, Any], plot_note: str | None) -> str:
    items = []
    if rec.get("error"):
        items.append(f'<li class="error">{escape_text(rec["error"])}</li>')
    warnings = {str(w) for w in rec.get("warnings") or []}
    for n in rec.get("notes") or []:
        cls = "warn" if str(n) in warnings else "note"
        items.append(f'<li class="{cls}">{escape_text(n)}</li>')
    if plot_note:
        items.append(f'<li class="noplot">{escape_text(plot_note)}</li>')
    sort_key = escape_text(rec.get("error") or "; ".join(map(str, rec.get("notes") or [])))
    body = f"<ul>{''.join(items)}</ul>" if items else ""
    return f'<td class="notes" data-v="{sort_key}">{body}</td>'


def render(
    records: list[dict[str, Any]],
    run: RunInfo,
    plots: dict[int, str] | None = None,
    plot_notes: dict[int, str] | None = None,
) -> str:
    """The page for ``records`` (``FileResult.to_json()`` dicts, in the order shown):
    ``plots``/``plot_notes`` by record index: an SVG (:func:`loudness_svg`) or the
    reason there is none. Returns the whole HTML document (a ``str``)."""
    plots, plot_notes = plots or {}, plot_notes or {}
    statuses = [_status(r) for r in records]
    counts = {s: statuses.count(s) for s in ("ok", "warning", "failed", "skipped", "finished")}
    title = f"fxcli process report: {escape_text(run.preset)}"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title><style>{_CSS}</style></head><body>",
        f"<h1>{title}</h1>",
        f'<p class="meta" id="meta">preset <b>{escape_text(run.preset)}</b> \u00b7 fxcli '
        f"{escape_text(run.version)} \u00b7 started {escape_text(run.started)} \u00b7 wall time "
        f"{run.wall_s:.1f} s \u00b7 {len(records)} files"
        + (f" \u00b7 {run.ignored} other files ignored (not audio)" if run.ignored else "")
        + "</p>",
    ]
    if run.stopped:
        out.append(
            f'<p class="banner stopped" id="stopped">Run {escape_text(run.stopped)}. Files in '
            "progress were not written; the table lists those that finished before it "
            f"stopped ({len(records)}). No curves were measured.</p>"
        )
    out.append('<ul id="summary">')
    out.append(f'<li class="total" data-count="{len(records)}">files: {len(records)}</li>')
    for s, label in (
        ("ok", "ok"),
        ("warning", "ok with warnings"),
        ("failed", "failed"),
        ("skipped", "skipped"),
        ("finished", "finished earlier"),
    ):
        if counts[s] or s in ("ok", "failed"):
            out.append(f'<li class="{s}" data-count="{counts[s]}">{label}: {counts[s]}</li>')
    out.append("</ul>")
    out.append('<table id="files"><thead><tr>')
    for key, head, kind in COLUMNS:
        out.append(f'<th data-col="{key}" data-type="{kind}" scope="col">{head}</th>')
    out.append("</tr></thead><tbody>")
    for i, (rec, status) in enumerate(zip(records, statuses, strict=True)):
        vals = _row_values(rec)
        name, dest = escape_text(rec.get("input", "")), escape_text(rec.get("output", ""))
        out.append(f'<tr class="{status}" data-status="{status}">')
        out.append(_cell("n", float(i + 1)))
        out.append(
            f'<td class="file" data-v="{name}"><div class="in">{name}</div>'
            f'<div class="out">\u2192 {dest}</div></td>'
        )
        out.append(
            f'<td class="status" data-v="{status}"><span class="badge {status}">'
            f"{status}</span></td>"
        )
        for key in ("in_lufs", "out_lufs", "in_tp", "out_tp", "gain", "change", "clipped"):
            out.append(_cell(key, vals[key]))
        out.append(_cell("seconds", vals["seconds"]))
        out.append(_notes_cell(rec, plot_notes.get(i)))
        svg = plots.get(i)
        out.append(f'<td class="plot">{svg}</td>' if svg else '<td class="plot"></td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    out.append(
        '<p class="meta">Loudness: ITU-R BS.1770-4 integrated (LUFS); TP: true peak '
        "(dBTP); Gain: the gain the analysis steps (loudness, normalize) applied; Change: "
        "output minus input loudness; Clipped: samples clipped at full scale by the writer. "
        "Click a header to sort.</p>"
    )
    out.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(out) + "\n"


def _plot_source(rec: dict[str, Any], key: str) -> str | None:
    """The local file to meter for ``rec[key]``, or None (a pipe, a URL, gone)."""
    name = str(rec.get(key) or "")
    if not name or name in ("-", "/dev/stdout", "/dev/stdin") or is_url(name):
        return None
    return name if os.path.isfile(name) else None


def _not_local(name: str, role: str) -> str:
    """Why ``name`` (the ``role``: input or output) cannot be metered after the run."""
    if is_url(name):
        return f"the {role} is a URL"
    if name in ("-", "/dev/stdout", "/dev/stdin"):
        return f"the {role} went through a pipe"
    return f"the {role} is no longer there"


def measure_plots(
    records: list[dict[str, Any]],
    budget_s: float = PLOT_BUDGET_S,
    cancel: Callable[[], bool] | None = None,
) -> tuple[dict[int, str], dict[int, str]]:
    """An SVG of input and output loudness over time for every ``ok`` record with
    local files, within ``budget_s`` seconds of metering and until ``cancel()`` is
    true (Ctrl-C); else the reason (by index)."""
    plots: dict[int, str] = {}
    notes: dict[int, str] = {}
    t0 = time.perf_counter()
    for i, rec in enumerate(records):
        if rec.get("status") != "ok":
            continue
        src, dest = _plot_source(rec, "input"), _plot_source(rec, "output")
        if dest is None:
            notes[i] = f"no plot: {_not_local(str(rec.get('output') or ''), 'output')}"
            continue
        if time.perf_counter() - t0 > budget_s:
            notes[i] = f"no plot: the report's {budget_s:g} s for measuring curves were spent"
            continue
        if cancel is not None and cancel():
            notes[i] = "no plot: interrupted while the curves were measured"
            continue
        curves: dict[str, Curve] = {}
        try:
            same = src is not None and os.path.samefile(src, dest)
            if src is not None and not same:
                curves["input"] = loudness_curve(src)
            curves["output"] = loudness_curve(dest)
        except (AudioError, ValueError, OSError) as exc:
            notes[i] = f"no plot: {exc}"
            continue
        if src is None:
            notes[i] = f"input curve not drawn: {_not_local(str(rec.get('input') or ''), 'input')}"
        elif same:
            notes[i] = "input curve not drawn: the output replaced the input"
        short = [k for k, c in curves.items() if c.t.size < 2]
        curves = {k: c for k, c in curves.items() if k not in short}
        if not curves:
            notes[i] = "no plot: shorter than the 400 ms loudness window"
            continue
        if short:
            notes[i] = f"{short[0]} curve not drawn: shorter than the 400 ms loudness window"
        plots[i] = loudness_svg(curves)
    return plots, notes


def stopped_text(signum: int | None) -> str | None:
    """How the page names the signal that stopped a run (None: it ran to the end)."""
    if signum is None:
        return None
    import signal

    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    if signum == getattr(signal, "SIGPIPE", None):
        return f"stopped: stdout was closed ({name})"
    return f"{'interrupted' if signum == signal.SIGINT else 'terminated'} ({name})"


def _sort_key(rec: dict[str, Any]) -> str:
    return str(rec.get("input", ""))


@dataclass
class BatchReport:
    """Collects the records of a run (:meth:`add`, from any thread that calls back)
    and writes the page (:meth:`write`, atomically, replacing an older report)."""

    path: Path
    preset: str
    version: str
    records: list[dict[str, Any]] = field(default_factory=list)
    started: str = field(
        default_factory=lambda: datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M:%S UTC"
        )
    )

    def add(self, record: dict[str, Any]) -> None:
        """One file's result (a ``FileResult.to_json()`` dict)."""
        self.records.append(record)

    def write(
        self,
        wall_s: float,
        *,
        ignored: int = 0,
        signum: int | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> str | None:
        """Measure the curves (not for a run stopped by signal ``signum``; no more
        once ``cancel()`` says so), render and write the page. Returns ``None``, or
        the one-line reason it was not written."""
        from fxcli.io.atomic import atomic_path

        records = sorted(self.records, key=_sort_key)
        stopped = stopped_text(signum)
        run = RunInfo(self.preset, self.version, self.started, wall_s, ignored, stopped)
        plots, notes = ({}, {}) if stopped else measure_plots(records, cancel=cancel)
        page = render(records, run, plots, notes)
        try:
            with atomic_path(self.path) as tmp:
                tmp.write_bytes(page.encode("utf-8"))
        except (OSError, AudioError) as exc:
            return f"report: {self.path}: not written: {getattr(exc, 'strerror', None) or exc}"
        return None
