"""``fxcli process ... --report report.html`` (issue 19): one self-contained HTML page
for the batch, checked for its content (the DOM: rows, columns, escaping, failures,
no external reference; the SVG plots: axes, labels, number of curves), end to end
through a real subprocess, and rendered in headless Chromium (screenshot and the DOM
after the sort script ran; skipped with the reason where Chromium is absent)."""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from fxcli.errors import UsageError
from fxcli.measure import batch_report as br
from fxcli.measure import loudness_svg as ls

ROOT = Path(__file__).resolve().parent.parent
NASTY = "in/<script>alert(\"x\")</script> & 'q' \udcff\x1b.wav"  # markup, quotes, a byte, ESC


# ------------------------------------------------------------------------ a DOM reader
class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node] = []
        self.text: list[str] = []

    def all(self, tag: str, cls: str | None = None) -> list[Node]:
        out = []
        for c in self.children:
            if c.tag == tag and (cls is None or cls in c.attrs.get("class", "").split()):
                out.append(c)
            out += c.all(tag, cls)
        return out

    def content(self) -> str:
        return "".join(self.text) + "".join(c.content() for c in self.children)


_VOID = {"meta", "br", "img", "input", "link", "hr", "col", "wbr"}
_SVG_EMPTY = {"line", "polyline", "path", "rect", "circle"}


class Dom(HTMLParser):
    """A small tree of the page (html.parser: an independent reader of the HTML)."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.cur = self.root
        self.attr_names: list[tuple[str, str]] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.cur)
        self.attr_names += [(k, v or "") for k, v in attrs]
        self.cur.children.append(node)
        if tag not in _VOID and tag not in _SVG_EMPTY:
            self.cur = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.cur)
        self.attr_names += [(k, v or "") for k, v in attrs]
        self.cur.children.append(node)

    def handle_endtag(self, tag: str) -> None:
        n: Node | None = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.cur = n.parent

    def handle_data(self, data: str) -> None:
        self.cur.text.append(data)

    def by_id(self, ident: str) -> Node | None:
        stack = [self.root]
        while stack:
            n = stack.pop()
            if n.attrs.get("id") == ident:
                return n
            stack += n.children
        return None


def rows(dom: Dom) -> list[Node]:
    table = dom.by_id("files")
    assert table is not None
    return table.all("tbody")[0].all("tr")


def cell(row: Node, key: str) -> Node:
    (td,) = [c for c in row.children if c.tag == "td" and key in c.attrs["class"].split()]
    return td


def check_self_contained(page: str, dom: Dom) -> None:
    """No reference outside the page: no URL, no src/href, no CSS import or url()."""
    assert not re.search(r"https?:|//[a-z]", page, re.I), "a URL in the page"
    assert not re.search(r"url\(|@import", page, re.I)
    assert [k for k, _ in dom.attr_names if k in ("src", "href", "action", "srcset")] == []
    assert [n.tag for n in dom.root.all("link")] == []
    csp = [
        n for n in dom.root.all("meta") if n.attrs.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp and "default-src 'none'" in csp[0].attrs["content"]


def check_svg(svg: Node, curves: list[str]) -> None:
    """The plot's content: both axes, tick values, axis labels, one polyline (and one
    legend entry) per curve, all points inside the drawing."""
    assert svg.tag == "svg"
    w, h = float(svg.attrs["width"]), float(svg.attrs["height"])
    assert len(svg.all("line", "x-axis")) == 1 and len(svg.all("line", "y-axis")) == 1
    labels = [t.content() for t in svg.all("text", "axis-label")]
    assert labels == ["time (s)", "LUFS"]
    yticks = [float(t.content()) for t in svg.all("text", "tick") if "y" in t.attrs["class"]]
    assert len(yticks) == 2 and yticks[0] > yticks[1]  # top above bottom, in LUFS
    xticks = [float(t.content()) for t in svg.all("text", "tick") if "x" in t.attrs["class"]]
    assert xticks[0] == 0 and xticks[1] > 0  # seconds
    lines = svg.all("polyline", "curve")
    assert [ln.attrs["class"].split()[1] for ln in lines] == curves
    assert [t.content() for t in svg.all("text", "legend")] == curves
    for ln in lines:
        pts = np.array([p.split(",") for p in ln.attrs["points"].split()], dtype=float)
        assert 2 <= len(pts) <= ls.PLOT_POINTS
        assert (pts[:, 0] >= 0).all() and (pts[:, 0] <= w).all()
        assert (pts[:, 1] >= 0).all() and (pts[:, 1] <= h).all()
        assert (np.diff(pts[:, 0]) >= 0).all()  # time runs left to right


# ------------------------------------------------------------------------ unit tests
def _levels(in_lufs: float, out_lufs: float, gains: list[float]) -> dict[str, Any]:
    return {
        "input": {"lufs": in_lufs, "true_peak_dbtp": -3.0, "peak_dbfs": -3.2},
        "output": {"lufs": out_lufs, "true_peak_dbtp": -1.5, "peak_dbfs": -1.7},
        "steps": [{"step": "loudness", "gain_db": g} for g in gains],
    }


def _records() -> list[dict[str, Any]]:
    ok = {"input": "in/a.wav", "output": "out/a.wav", "status": "ok", "frames": 480000,
          "sample_rate": 48000, "clipped": 0, "notes": [], "warnings": [], "error": None,
          "levels": _levels(-23.0, -16.0, [3.0, 4.0])}  # fmt: skip
    warn = dict(ok, input=NASTY, output="out/n.wav", clipped=12,
                notes=["clipped 12 samples at full scale"],
                warnings=["clipped 12 samples at full scale"],
                levels=_levels(-12.5, -9.0, [3.5]))  # fmt: skip
    failed = {"input": "in/broken.wav", "output": "out/broken.wav", "status": "failed",
              "frames": 0, "sample_rate": None, "clipped": 0, "notes": [], "warnings": [],
              "error": "cannot read audio: Format not recognised <blink>",
              "levels": None}  # fmt: skip
    skipped = dict(failed, input="in/old.wav", output="out/old.wav", status="skipped",
                   error=None, notes=["output exists"])  # fmt: skip
    return [ok, warn, failed, skipped]


def _curve(level: float, seconds: float = 10.0) -> ls.Curve:
    t = np.arange(4, int(seconds * 10) + 1) / 10.0
    return ls.Curve(t, level + np.sin(t), seconds)


def _page(signum: int | None = None) -> str:
    run = br.RunInfo("voice", "9.9", "2026-01-01 00:00:00 UTC", 12.5, ignored=2,
                     stopped=br.stopped_text(signum))  # fmt: skip
    plots = {0: ls.loudness_svg({"input": _curve(-23), "output": _curve(-16)}),
             1: ls.loudness_svg({"output": _curve(-9)})}  # fmt: skip
    return br.render(_records(), run, plots, {1: "input curve not drawn: a URL"})


def test_page_table_rows_columns_and_counts() -> None:
    # issue 19: one row per file, the documented columns, the run's counts on top
    page = _page()
    page.encode("utf-8")  # no lone surrogate left (a name's undecodable byte is escaped)
    dom = Dom(page)
    table = dom.by_id("files")
    assert table is not None
    heads = table.all("thead")[0].all("th")
    assert [h.attrs["data-col"] for h in heads] == [c[0] for c in br.COLUMNS]
    kinds = {h.attrs["data-col"]: h.attrs["data-type"] for h in heads}
    assert kinds["in_lufs"] == kinds["out_tp"] == kinds["gain"] == "num"
    assert kinds["file"] == "text" and kinds["plot"] == "none"
    trs = rows(dom)
    assert [r.attrs["data-status"] for r in trs] == ["ok", "warning", "failed", "skipped"]
    ok = trs[0]
    assert cell(ok, "in_lufs").attrs["data-v"] == "-23.0"
    assert cell(ok, "out_lufs").content() == "-16.00"
    assert cell(ok, "out_tp").content() == "-1.50"
    assert cell(ok, "gain").content() == "7.00"  # the sum of the analysis steps' gains
    assert cell(ok, "change").content() == "7.00"  # output minus input loudness
    assert cell(ok, "seconds").content() == "10.00"
    assert cell(trs[1], "clipped").content() == "12"
    assert cell(trs[2], "in_lufs").attrs["data-v"] == ""  # not measured: empty, sorts last
    summary = dom.by_id("summary")
    assert summary is not None
    counts = {li.attrs["class"]: int(li.attrs["data-count"]) for li in summary.all("li")}
    assert counts == {"total": 4, "ok": 1, "warning": 1, "failed": 1, "skipped": 1}
    meta = dom.by_id("meta")
    assert meta is not None
    assert "voice" in meta.content() and "9.9" in meta.content() and "12.5 s" in meta.content()
    assert dom.by_id("stopped") is None


def test_failures_notes_and_nasty_names_are_escaped() -> None:
    # issue 19 + issue 16: names and messages are text, never markup; bytes shown as \xNN
    page = _page()
    dom = Dom(page)
    assert "<script>alert" not in page and "<blink>" not in page
    assert len(dom.root.all("script")) == 1  # the page's own sort script only
    trs = rows(dom)
    name = cell(trs[1], "file").all("div", "in")[0].content()
    assert name == "in/<script>alert(\"x\")</script> & 'q' \\xff\\x1b.wav"
    failed = trs[2]
    assert failed.attrs["class"] == "failed"
    (err,) = cell(failed, "notes").all("li", "error")
    assert err.content() == "cannot read audio: Format not recognised <blink>"
    assert cell(failed, "status").content() == "failed"
    (warn,) = cell(trs[1], "notes").all("li", "warn")  # a missed promise, styled
    assert warn.content() == "clipped 12 samples at full scale"
    assert cell(trs[1], "notes").all("li", "noplot")[0].content().startswith("input curve")


def test_page_is_self_contained() -> None:
    # issue 19: viewable offline: no URL, no src/href, a CSP that loads nothing
    page = _page()
    check_self_contained(page, Dom(page))


def test_sort_script_is_there() -> None:
    (script,) = Dom(_page()).root.all("script")
    js = script.content()
    assert "addEventListener" in js and "#sort=" in js and "parseFloat" in js


def test_svg_plots_have_axes_labels_and_one_curve_per_signal() -> None:
    # issue 19: every picture is checked for its content, not only for existing
    trs = rows(Dom(_page()))
    (svg,) = cell(trs[0], "plot").all("svg")
    check_svg(svg, ["input", "output"])
    (svg1,) = cell(trs[1], "plot").all("svg")
    check_svg(svg1, ["output"])
    assert cell(trs[2], "plot").all("svg") == []  # a failed file: no plot


def test_stopped_run_says_so() -> None:
    # issue 19: an interrupted run's page says so
    dom = Dom(_page(signal.SIGINT))
    banner = dom.by_id("stopped")
    assert banner is not None and "interrupted (SIGINT)" in banner.content()
    assert br.stopped_text(signal.SIGTERM) == "terminated (SIGTERM)"
    assert br.stopped_text(None) is None


def test_decimate_averages_power() -> None:
    t = np.arange(1000) / 10.0
    v = np.full(1000, -20.0)
    v[::2] = -np.inf  # half the windows silent: each bin holds half the power
    td, vd = ls.decimate(t, v, 100)
    assert td.shape == vd.shape == (100,)
    np.testing.assert_allclose(vd, -20.0 - 10 * math.log10(2), atol=1e-9)
    assert td[-1] == t[-1]
    assert np.isneginf(ls.decimate(t, np.full(1000, -np.inf), 50)[1]).all()
    short = ls.decimate(t[:10], v[:10], 100)
    assert short[0].size == 10


def test_plots_only_for_local_files(tmp_path: Path) -> None:
    # issue 19: curves for local files; URLs, pipes and failures get a reason instead
    fs = 16000
    x = 0.1 * np.sin(2 * np.pi * 300 * np.arange(fs * 5) / fs)
    sf.write(tmp_path / "i.wav", x, fs)
    sf.write(tmp_path / "o.wav", 0.5 * x, fs)
    sf.write(tmp_path / "tiny.wav", x[: fs // 10], fs)
    sf.write(tmp_path / "tiny2.wav", x[: fs // 10], fs)
    i, o = str(tmp_path / "i.wav"), str(tmp_path / "o.wav")
    tiny, tiny2 = str(tmp_path / "tiny.wav"), str(tmp_path / "tiny2.wav")
    recs = [
        {"input": i, "output": o, "status": "ok"},
        {"input": i, "output": "-", "status": "ok"},
        {"input": "s3://b/i.wav", "output": o, "status": "ok"},
        {"input": i, "output": str(tmp_path / "gone.wav"), "status": "ok"},
        {"input": i, "output": o, "status": "failed"},
        {"input": tiny2, "output": tiny, "status": "ok"},
        {"input": i, "output": tiny, "status": "ok"},
    ]
    plots, notes = br.measure_plots(recs)
    assert sorted(plots) == [0, 2, 6]
    dom = Dom(plots[0])
    check_svg(dom.root.all("svg")[0], ["input", "output"])
    levels = [np.array([p.split(",") for p in ln.attrs["points"].split()], dtype=float)[:, 1]
              for ln in dom.root.all("polyline")]  # fmt: skip
    assert levels[1].mean() > levels[0].mean()  # the output, 6 dB quieter, is drawn lower
    check_svg(Dom(plots[2]).root.all("svg")[0], ["output"])
    assert notes == {
        1: "no plot: the output went through a pipe",
        2: "input curve not drawn: the input is a URL",
        3: "no plot: the output is no longer there",
        5: "no plot: shorter than the 400 ms loudness window",
        6: "output curve not drawn: shorter than the 400 ms loudness window",
    }
    check_svg(Dom(plots[6]).root.all("svg")[0], ["input"])
    plots, notes = br.measure_plots(recs[:1], budget_s=-1.0)
    assert plots == {} and notes[0].startswith("no plot: the report's")
    plots, notes = br.measure_plots(recs[:1], cancel=lambda: True)  # Ctrl-C meanwhile
    assert plots == {} and notes[0] == "no plot: interrupted while the curves were measured"


def test_report_path_is_checked_up_front(tmp_path: Path) -> None:
    # issue 19: a report that cannot be written is a usage error before any file
    for bad, why in (
        (str(tmp_path / "no" / "r.html"), "does not exist"),
        (str(tmp_path), "is a directory"),
        ("-", "a local file path"),
        ("s3://bucket/r.html", "a local file path"),
    ):
        with pytest.raises(UsageError, match=why) as e:
            br.check_report_path(bad)
        assert e.value.option == "report"
    src = tmp_path / "a.wav"
    src.write_bytes(b"")
    with pytest.raises(UsageError, match="input or output"):
        br.check_report_path(str(src), [str(src)])
    assert br.check_report_path(str(tmp_path / "r.html"), [str(src)]) == tmp_path / "r.html"
    # a report in the OUTPUT folder the run creates; not under an output file's name
    out = str(tmp_path / "out")
    assert br.check_report_path(f"{out}/sub/r.html", [str(src)], out) == Path(f"{out}/sub/r.html")
    with pytest.raises(UsageError, match="does not exist"):
        br.check_report_path(f"{out}/r.html", [str(src), out], out)
    with pytest.raises(UsageError, match="does not exist"):
        br.check_report_path(str(tmp_path / "elsewhere" / "r.html"), [str(src)], out)
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(UsageError, match="not writable"):
            br.check_report_path(str(ro / "r.html"))


# ------------------------------------------------------------------------ end to end
def _fxcli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "fxcli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300, env=env)  # fmt: skip


def _batch(tmp_path: Path) -> Path:
    """in/ with three files (one with markup and quotes in its name, one 20 s with a
    fade to silence, one named with a byte that is not UTF-8) and a broken one."""
    rng = np.random.default_rng(7)
    fs = 48000
    t = np.arange(fs * 6) / fs
    a = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "a <&\"'.wav", np.stack([a, a], 1), fs, subtype="PCM_24")
    b = 0.05 * rng.standard_normal(fs * 20) * np.minimum(1.0, (20 - np.arange(fs * 20) / fs) / 8)
    sf.write(tmp_path / "in" / "b.flac", b, fs, subtype="PCM_16")
    (tmp_path / "in" / "broken.wav").write_bytes(b"RIFF not really audio")
    # a name that is not UTF-8 (issue 16): shown with the byte as \xff
    shutil.copy(tmp_path / "in" / "a <&\"'.wav", tmp_path / "in" / os.fsdecode(b"d\xff.wav"))
    return tmp_path / "in"


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    tmp = tmp_path_factory.mktemp("report")
    _batch(tmp)
    r = _fxcli("process", "in/", "out/", "--preset", "voice", "--report", "r.html", cwd=tmp)
    return tmp, r


def test_process_report_end_to_end(e2e: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    # issue 19: the page of a real run with a broken input (exit 1: some files failed)
    from fxcli.measure.analyze import analyze_file

    tmp, r = e2e
    assert r.returncode == 1, r.stderr
    assert "report: r.html" in r.stderr
    page = (tmp / "r.html").read_text(encoding="utf-8")
    dom = Dom(page)
    check_self_contained(page, dom)
    trs = rows(dom)
    names = [cell(tr, "file").all("div", "in")[0].content() for tr in trs]
    assert names == ["in/a <&\"'.wav", "in/b.flac", "in/broken.wav", "in/d\\xff.wav"]
    assert [tr.attrs["data-status"] for tr in trs] == ["ok", "ok", "failed", "ok"]
    (err,) = cell(trs[2], "notes").all("li", "error")
    assert "cannot read audio" in err.content()
    assert cell(trs[2], "plot").all("svg") == []
    for tr, out in zip(trs[:2], ["out/a <&\"'.wav", "out/b.flac"], strict=True):
        check_svg(cell(tr, "plot").all("svg")[0], ["input", "output"])
        # the figures against an independent reading of the written output
        info = sf.info(tmp / out)
        assert float(cell(tr, "seconds").attrs["data-v"]) == pytest.approx(
            info.frames / info.samplerate, abs=0.01
        )
        measured = analyze_file(tmp / out)
        assert float(cell(tr, "out_lufs").attrs["data-v"]) == pytest.approx(
            measured.integrated_lufs, abs=0.1
        )
        assert float(cell(tr, "out_lufs").attrs["data-v"]) == pytest.approx(-16.0, abs=0.3)
        peak = 20 * np.log10(np.abs(sf.read(tmp / out)[0]).max())
        assert float(cell(tr, "out_tp").attrs["data-v"]) >= peak - 0.01  # true >= sample peak
        gain = float(cell(tr, "gain").attrs["data-v"])
        assert math.isfinite(gain)
    summary = dom.by_id("summary")
    assert summary is not None
    counts = {li.attrs["class"]: int(li.attrs["data-count"]) for li in summary.all("li")}
    assert counts["ok"] == 3 and counts["failed"] == 1 and counts["total"] == 4


def test_unwritable_report_is_a_usage_error_before_any_file(tmp_path: Path) -> None:
    # issue 19: exit 2, one line, nothing processed
    _batch(tmp_path)
    r = _fxcli("process", "in/", "out/", "-p", "voice", "--report", "nope/r.html", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        "error: --report nope/r.html: folder nope does not exist"
    ]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_interrupted_run_writes_its_page(tmp_path: Path) -> None:
    # issue 19: Ctrl-C after the first file: the page lists what finished and says so
    fs = 16000
    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "a.wav", 0.1 * np.ones(fs // 2), fs, subtype="PCM_16")
    long = 0.05 * np.random.default_rng(1).standard_normal(fs * 600)
    for name in ("b.wav", "c.wav"):
        sf.write(tmp_path / "in" / name, long, fs, subtype="PCM_16")
    cmd = [sys.executable, "-m", "fxcli", "process", "in/", "out/", "-p", "voice", "--jobs",
           "1", "--progress", "never", "--report", "r.html"]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with subprocess.Popen(cmd, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        lines = []
        for line in proc.stderr:  # the first file's line, then Ctrl-C
            lines.append(line)
            if line.startswith("ok"):
                proc.send_signal(signal.SIGINT)
                break
        rest = proc.stderr.read()
        rc = proc.wait(timeout=300)
    if rc == 0:
        pytest.skip("the run finished before the signal reached it")
    assert rc == 130, "".join(lines) + rest
    assert "report: r.html" in rest
    dom = Dom((tmp_path / "r.html").read_text(encoding="utf-8"))
    banner = dom.by_id("stopped")
    assert banner is not None and "interrupted (SIGINT)" in banner.content()
    trs = rows(dom)
    assert 1 <= len(trs) <= 2 and cell(trs[0], "file").attrs["data-v"] == "in/a.wav"
    assert all(cell(tr, "plot").all("svg") == [] for tr in trs)  # no curves measured


def test_report_inside_the_output_folder(tmp_path: Path) -> None:
    # issue 19: `--report out/report.html` on a first run (OUTPUT does not exist yet)
    _batch(tmp_path)
    (tmp_path / "in" / "broken.wav").unlink()
    r = _fxcli("process", "in/", "out/", "-p", "voice", "--report", "out/report.html",
               cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    trs = rows(Dom((tmp_path / "out" / "report.html").read_text(encoding="utf-8")))
    assert [tr.attrs["data-status"] for tr in trs] == ["ok", "ok", "ok"]


# ------------------------------------------------------------------------ in a browser
def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _browser(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    exe = _chromium()
    assert exe is not None
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp / 'profile'}",
           "--no-first-run", "--disable-extensions", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp)


@pytest.mark.skipif(
    _chromium() is None,
    reason="headless Chromium is not installed (Debian: apt-get install chromium); "
    "the page is checked without a browser by the tests above",
)
def test_page_renders_in_chromium(e2e: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    # issue 19: the page as a browser shows it: the sort script runs (#sort=), the
    # table and the curves are drawn (colours of the table and of both curves)
    tmp, _ = e2e
    url = (tmp / "r.html").as_uri()
    r = _browser(["--dump-dom", url + "#sort=in_lufs:desc"], tmp)
    assert r.returncode == 0, r.stderr[-2000:]
    dom = Dom(r.stdout)
    table = dom.by_id("files")
    assert table is not None and table.attrs.get("data-sorted") == "in_lufs:desc"
    values = [cell(tr, "in_lufs").attrs["data-v"] for tr in rows(dom)]
    nums = [float(v) for v in values if v]
    assert len(nums) == 3 and nums == sorted(nums, reverse=True)
    assert values[-1] == ""  # the failed file (no measure) sorts last
    head = [th for th in table.all("th") if th.attrs["data-col"] == "in_lufs"][0]
    assert head.attrs.get("aria-sort") == "descending"
    r = _browser(["--dump-dom", url + "#sort=file"], tmp)
    names = [cell(tr, "file").attrs["data-v"] for tr in rows(Dom(r.stdout))]
    assert names == sorted(names, key=str.lower)

    pil = pytest.importorskip("PIL.Image", reason="Pillow is needed to read the screenshot")
    shot = tmp / "shot.png"
    r = _browser([f"--screenshot={shot}", "--window-size=1200,900", url], tmp)
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    img = np.asarray(pil.open(shot).convert("RGB")).astype(int)
    assert img.shape == (900, 1200, 3)
    assert img.std() > 20  # not blank

    def near(rgb: tuple[int, int, int], tol: int = 12) -> np.ndarray:
        return np.abs(img - np.array(rgb)).max(axis=2) <= tol

    header = near((0xF3, 0xF5, 0xF8), 2)  # the table header's background
    header_rows = np.nonzero(header.sum(axis=1) > 600)[0]
    assert header_rows.size >= 10, "no table header band in the screenshot"
    failed_rows = np.nonzero(near((0xFF, 0xF0, 0xEF), 2).sum(axis=1) > 300)[0]
    assert failed_rows.size >= 10 and failed_rows.min() > header_rows.max()  # below the header
    # input and output curves: ~130 pixels each per plot (the legends' text: < 20)
    for colour in ((0x1F, 0x77, 0xB4), (0xE4, 0x57, 0x2E)):
        assert near(colour).sum() > 150, f"no curve drawn in #{bytes(colour).hex()}"
