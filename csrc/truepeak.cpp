// True peak: a polyphase interpolator of L phases x T taps, taken at run time.
//
// Per phase p and input index j (history included, see below) the value is
//     acc = x[j] * c[p][0];  acc = acc + x[j - k] * c[p][k]   for k = 1 .. T - 1
// in that order (tap order, no FMA: the build passes -ffp-contract=off), which is
// the torch loop of fxcli.dsp.truepeak.oversample, operation for operation: the
// results are equal bit for bit whatever the chunking, the threads or the vector
// width. fxcli.dsp.truepeak passes the rate-dependent Kaiser-windowed sinc
// (L >= 8, T = 48) or the BS.1770-4 Annex 2 filter (L = 4, T = 12).
//
// Inputs: x (rows, n) float32/float64 (converted to float64 exactly), hist
// (rows, T - 1) float64 = the T - 1 samples before x[:, 0], oldest first. The two
// are never concatenated in memory: each work item copies its own stretch (with
// the T - 1 samples before it) block by block into a float64 scratch buffer.
// Consecutive output samples are computed together in 4-wide vectors (lanes =
// time steps; each lane's arithmetic is the scalar code's), two vectors per
// coefficient load.
//
// Work items are (row, segment of time): a peak is a maximum, exact in any
// order, so one long row can be spread over several threads and the segment
// peaks combined; oversampled values do not depend on the split at all.
//
// Pruning (true_peak only, exact): every interpolated value obeys
// |value| <= max|x over its support| * l1 with l1 the largest phase L1 norm; a
// block of PRUNE samples whose bound (times 1 + 1e-9 for rounding) does not
// exceed the peak found so far cannot change the maximum and is skipped. Blocks
// are visited loudest first, so the peak is found early; inside a block, each
// group of 8 steps is skipped the same way on its own bound against the peak of
// the blocks before (issue 17: most of a loud master's blocks hold a sample
// loud enough to be visited, few of its 8-step groups do). The result is the
// unpruned maximum, bit for bit. (A NaN or inf never makes a bound that prunes.)
#include "common.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace fx {
namespace {

constexpr std::ptrdiff_t TP_BLOCK = 4096;        // samples per scratch block (oversample)
constexpr std::ptrdiff_t PRUNE = 512;            // samples per pruning block (true_peak)
constexpr std::ptrdiff_t MIN_SEGMENT = 1 << 15;  // samples per work item at least

struct Taps {
    int L = 0, T = 0;
    std::ptrdiff_t hist = 0;  // T - 1
    std::vector<double> c;    // (L, T)
    double l1 = 0.0;          // max over phases of sum |c[p][k]|
    const double* row(int p) const { return c.data() + static_cast<size_t>(p) * T; }
};

// Copy x[t0 - hist .. t0 + m) of one row (hist before index 0) as float64 into buf.
template <class T>
inline void fill(double* buf, const T* xr, const double* hr, std::ptrdiff_t H, std::ptrdiff_t t0,
                 std::ptrdiff_t m) {
    for (std::ptrdiff_t i = 0; i < H + m; ++i) {
        std::ptrdiff_t t = t0 - H + i;
        buf[i] = t < 0 ? hr[H + t] : static_cast<double>(xr[t]);
    }
}

// scalar value of phase p at buf index j (j >= hist)
inline double phase_at(const double* buf, std::ptrdiff_t j, const double* c, int T) {
    double acc = buf[j] * c[0];
    for (int k = 1; k < T; ++k) acc = acc + buf[j - k] * c[k];
    return acc;
}

#if FX_HAVE_VEC
typedef long long v4i __attribute__((vector_size(32)));

inline v4d load4(const double* p) {
    v4d v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline void store4(double* p, v4d v) { std::memcpy(p, &v, sizeof v); }
inline v4d splat(double a) { return v4d{a, a, a, a}; }
inline v4d vabs(v4d a) {
    const v4i mask = {0x7fffffffffffffffLL, 0x7fffffffffffffffLL, 0x7fffffffffffffffLL,
                      0x7fffffffffffffffLL};
    return (v4d)((v4i)a & mask);
}
// lane-wise "if (a > pk) pk = a" (a NaN never replaces pk, as in the scalar code)
inline v4d vmax(v4d pk, v4d a) { return a > pk ? a : pk; }
#endif


// Peak of |x| and of |phase values| over buf[hist .. hist + m), merged into peak.
FX_CLONES double peak_block(const double* buf, std::ptrdiff_t m, const Taps& tp, double peak) {
    const std::ptrdiff_t H = tp.hist;
    const int L = tp.L, T = tp.T;
    std::ptrdiff_t j = H;
    const std::ptrdiff_t end = H + m;
#if FX_HAVE_VEC
    if (m >= 2 * LANES) {
        v4d pk0 = splat(0.0), pk1 = splat(0.0);
        for (; j + 2 * LANES <= end; j += 2 * LANES) {
            // the 8 steps' own bound (their supports' max |x| times l1): none
            // can exceed the peak found before this block, so they change nothing
            double mx = 0.0;
            for (std::ptrdiff_t k = j - H; k < j + 2 * LANES; ++k) {
                double v = std::fabs(buf[k]);
                mx = v > mx ? v : mx;
            }
            if (mx <= 1e300 && mx * tp.l1 * (1.0 + 1e-9) <= peak) continue;
            v4d x0 = load4(buf + j), x1 = load4(buf + j + LANES);
            pk0 = vmax(pk0, vabs(x0));
            pk1 = vmax(pk1, vabs(x1));
            for (int p = 0; p < L; ++p) {
                const double* c = tp.row(p);
                v4d c0 = splat(c[0]);
                v4d a0 = x0 * c0, a1 = x1 * c0;
                for (int k = 1; k < T; ++k) {
                    v4d ck = splat(c[k]);
                    a0 = a0 + load4(buf + j - k) * ck;
                    a1 = a1 + load4(buf + j + LANES - k) * ck;
                }
                pk0 = vmax(pk0, vabs(a0));
                pk1 = vmax(pk1, vabs(a1));
            }
        }
        for (int l = 0; l < LANES; ++l) {
            if (pk0[l] > peak) peak = pk0[l];
            if (pk1[l] > peak) peak = pk1[l];
        }
    }
#endif
    for (; j < end; ++j) {
        double v = std::fabs(buf[j]);
        if (v > peak) peak = v;
        for (int p = 0; p < L; ++p) {
            double a = std::fabs(phase_at(buf, j, tp.row(p), T));
            if (a > peak) peak = a;
        }
    }
    return peak;
}

// Phase values of buf[hist .. hist + m) into out[L i + p].
FX_CLONES void oversample_block(const double* buf, std::ptrdiff_t m, const Taps& tp, double* out) {
    const std::ptrdiff_t H = tp.hist;
    const int L = tp.L, T = tp.T;
    std::ptrdiff_t j = H;
    const std::ptrdiff_t end = H + m;
#if FX_HAVE_VEC
    for (; j + LANES <= end; j += LANES) {
        v4d x0 = load4(buf + j);
        double* o = out + L * (j - H);
        for (int p = 0; p < L; ++p) {
            const double* c = tp.row(p);
            v4d a0 = x0 * splat(c[0]);
            for (int k = 1; k < T; ++k) a0 = a0 + load4(buf + j - k) * splat(c[k]);
            for (int l = 0; l < LANES; ++l) o[L * l + p] = a0[l];
        }
    }
#endif
    for (; j < end; ++j)
        for (int p = 0; p < L; ++p) out[L * (j - H) + p] = phase_at(buf, j, tp.row(p), T);
}

// segments per row so that rows * segs spreads over the threads
inline std::ptrdiff_t segments(std::ptrdiff_t rows, std::ptrdiff_t n, int threads) {
    if (threads <= 1 || rows < 1 || rows >= threads) return 1;
    std::ptrdiff_t want = (threads + rows - 1) / rows;
    return std::max<std::ptrdiff_t>(1, std::min(want, n / MIN_SEGMENT));
}

// Peak over the output steps [lo, hi) of one row, pruned (see the file comment).
template <class T>
double segment_peak(const T* xr, const double* hr, std::ptrdiff_t lo, std::ptrdiff_t hi,
                    const Taps& tp) {
    const std::ptrdiff_t H = tp.hist;
    const std::ptrdiff_t nb = (hi - lo + PRUNE - 1) / PRUNE;
    std::vector<double> buf(static_cast<size_t>(H + PRUNE));
    // bound of each block: max |x| over its steps and the H samples before them
    std::vector<double> bound(static_cast<size_t>(nb));
    std::vector<std::ptrdiff_t> order(static_cast<size_t>(nb));
    for (std::ptrdiff_t b = 0; b < nb; ++b) {
        std::ptrdiff_t t0 = lo + b * PRUNE, m = std::min(PRUNE, hi - t0);
        fill(buf.data(), xr, hr, H, t0, m);
        double mx = 0.0;
        bool finite = true;
        for (std::ptrdiff_t i = 0; i < H + m; ++i) {
            double v = std::fabs(buf[i]);
            if (!(v <= 1e300)) finite = false;  // NaN, inf: never pruned
            if (v > mx) mx = v;
        }
        bound[b] = finite ? mx * tp.l1 * (1.0 + 1e-9) : INFINITY;
    }
    std::iota(order.begin(), order.end(), std::ptrdiff_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](std::ptrdiff_t a, std::ptrdiff_t b) { return bound[a] > bound[b]; });
    double peak = 0.0;
    for (std::ptrdiff_t b : order) {
        if (bound[b] <= peak) break;  // sorted: no later block can exceed the peak either
        std::ptrdiff_t t0 = lo + b * PRUNE, m = std::min(PRUNE, hi - t0);
        fill(buf.data(), xr, hr, H, t0, m);
        peak = peak_block(buf.data(), m, tp, peak);
    }
    return peak;
}

template <class T>
void peaks_of(const T* x, const double* hist, double* peaks, std::ptrdiff_t rows, std::ptrdiff_t n,
              const Taps& tp, int threads) {
    const std::ptrdiff_t segs = segments(rows, n, threads);
    std::vector<double> part(static_cast<size_t>(rows * segs), 0.0);
    parallel_for(rows * segs, threads, [&](std::ptrdiff_t item) {
        std::ptrdiff_t r = item / segs, s = item % segs;
        std::ptrdiff_t lo = n * s / segs, hi = n * (s + 1) / segs;
        part[item] = segment_peak(x + r * n, hist + r * tp.hist, lo, hi, tp);
    });
    for (std::ptrdiff_t r = 0; r < rows; ++r) {
        double peak = 0.0;
        for (std::ptrdiff_t s = 0; s < segs; ++s)
            if (part[r * segs + s] > peak) peak = part[r * segs + s];
        peaks[r] = peak;
    }
}

template <class T>
void oversample_of(const T* x, const double* hist, double* out, std::ptrdiff_t rows,
                   std::ptrdiff_t n, const Taps& tp, int threads) {
    const std::ptrdiff_t segs = segments(rows, n, threads);
    const std::ptrdiff_t H = tp.hist;
    parallel_for(rows * segs, threads, [&](std::ptrdiff_t item) {
        std::ptrdiff_t r = item / segs, s = item % segs;
        std::ptrdiff_t lo = n * s / segs, hi = n * (s + 1) / segs;
        std::vector<double> buf(static_cast<size_t>(H + std::min(TP_BLOCK, hi - lo)));
        for (std::ptrdiff_t t0 = lo; t0 < hi; t0 += TP_BLOCK) {
            std::ptrdiff_t m = std::min(TP_BLOCK, hi - t0);
            fill(buf.data(), x + r * n, hist + r * H, H, t0, m);
            oversample_block(buf.data(), m, tp, out + tp.L * (r * n + t0));
        }
    });
}

Taps taps_of(const py::array& phases) {
    const double* c = cdata_of<double>(phases, "phases", 2);
    if (phases.shape(0) < 1 || phases.shape(1) < 1 || phases.shape(0) > 64 ||
        phases.shape(1) > 1024)
        throw std::invalid_argument("phases: expected shape (L, T), 1 <= L <= 64, 1 <= T <= 1024");
    Taps tp;
    tp.L = static_cast<int>(phases.shape(0));
    tp.T = static_cast<int>(phases.shape(1));
    tp.hist = tp.T - 1;
    tp.c.assign(c, c + static_cast<size_t>(tp.L) * tp.T);
    for (int p = 0; p < tp.L; ++p) {
        double s = 0.0;
        for (int k = 0; k < tp.T; ++k) s += std::fabs(tp.row(p)[k]);
        tp.l1 = std::max(tp.l1, s);
    }
    tp.l1 = std::max(tp.l1, 1.0);  // |x| itself is part of the peak
    return tp;
}

const double* hist_of(const py::array& x, const py::array& hist, const Taps& tp) {
    if (x.ndim() != 2) throw std::invalid_argument("x: expected a 2-D array");
    const double* h = cdata_of<double>(hist, "hist", 2);
    if (hist.shape(0) != x.shape(0) || hist.shape(1) != tp.hist)
        throw std::invalid_argument("hist: expected shape (rows, T - 1)");
    return h;
}

void true_peak(const py::array& x, const py::array& hist, py::array& peaks,
               const py::array& phases, int threads) {
    Taps tp = taps_of(phases);
    const double* h = hist_of(x, hist, tp);
    std::ptrdiff_t rows = x.shape(0), n = x.shape(1);
    double* pk = data_of<double>(peaks, "peaks", 1);
    if (peaks.shape(0) != rows) throw std::invalid_argument("peaks: expected shape (rows,)");
    if (is_f32(x)) {
        const float* xp = cdata_of<float>(x, "x", 2);
        py::gil_scoped_release nogil;
        peaks_of(xp, h, pk, rows, n, tp, threads);
    } else {
        const double* xp = cdata_of<double>(x, "x", 2);
        py::gil_scoped_release nogil;
        peaks_of(xp, h, pk, rows, n, tp, threads);
    }
}

void oversample(const py::array& x, const py::array& hist, py::array& out,
                const py::array& phases, int threads) {
    Taps tp = taps_of(phases);
    const double* h = hist_of(x, hist, tp);
    std::ptrdiff_t rows = x.shape(0), n = x.shape(1);
    double* o = data_of<double>(out, "out", 2);
    if (out.shape(0) != rows || out.shape(1) != tp.L * n)
        throw std::invalid_argument("out: expected shape (rows, L n)");
    if (is_f32(x)) {
        const float* xp = cdata_of<float>(x, "x", 2);
        py::gil_scoped_release nogil;
        oversample_of(xp, h, o, rows, n, tp, threads);
    } else {
        const double* xp = cdata_of<double>(x, "x", 2);
        py::gil_scoped_release nogil;
        oversample_of(xp, h, o, rows, n, tp, threads);
    }
}

}  // namespace

void register_truepeak(py::module_& m) {
    m.def("true_peak", &true_peak, py::arg("x"), py::arg("hist"), py::arg("peaks"),
          py::arg("phases"), py::arg("threads") = 1,
          "True peak per row: x (rows, n) float32/float64, hist (rows, T - 1) float64 (the "
          "samples before x), phases (L, T) float64 -> peaks (rows,) float64, the max of |x| and "
          "of the |L x interpolated values| (exactly pruned). GIL released.");
    m.def("truepeak_oversample", &oversample, py::arg("x"), py::arg("hist"), py::arg("out"),
          py::arg("phases"), py::arg("threads") = 1,
          "L x oversampling: x (rows, n) float32/float64, hist (rows, T - 1) float64, phases "
          "(L, T) float64 -> out (rows, L n) float64, out[r, L i + p] = phase p at input i. GIL "
          "released.");
}

}  // namespace fx
