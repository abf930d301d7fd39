// True peak (ITU-R BS.1770-4 Annex 2): the 4-phase x 12-tap interpolator.
//
// Per phase p and input index j (history included, see below) the value is
//     acc = x[j] * c[p][0];  acc = acc + x[j - k] * c[p][k]   for k = 1 .. 11
// in that order (tap order, no FMA: the build passes -ffp-contract=off), which is
// the torch loop of fxcli.dsp.truepeak.oversample4 and the numba kernels this
// file replaces, operation for operation: the results are equal bit for bit.
//
// Inputs: x (rows, n) float32/float64 (converted to float64 exactly), hist
// (rows, 11) float64 = the 11 samples before x[:, 0], oldest first. The two are
// never concatenated in memory: each work item copies its own stretch (with the
// 11 samples before it) block by block into a float64 scratch buffer.
// Consecutive output samples are computed together in 4-wide vectors (lanes =
// time steps; each lane's arithmetic is the scalar code's).
//
// Work items are (row, segment of time): a peak is a maximum, exact in any
// order, so one long row can be spread over several threads and the segment
// peaks combined; oversampled values do not depend on the split at all.
#include "common.hpp"

#include <cmath>
#include <cstring>

namespace fx {
namespace {

constexpr int PH = 4;    // phases
constexpr int TAPS = 12; // taps per phase
constexpr std::ptrdiff_t HIST = TAPS - 1;
constexpr std::ptrdiff_t TP_BLOCK = 4096;        // samples per scratch block
constexpr std::ptrdiff_t MIN_SEGMENT = 1 << 15;  // samples per work item at least

struct Taps {
    double c[PH][TAPS];
};

// Copy x[t0 - 11 .. t0 + m) of one row (hist before index 0) as float64 into buf.
template <class T>
inline void fill(double* buf, const T* xr, const double* hr, std::ptrdiff_t t0, std::ptrdiff_t m) {
    for (std::ptrdiff_t i = 0; i < HIST + m; ++i) {
        std::ptrdiff_t t = t0 - HIST + i;
        buf[i] = t < 0 ? hr[HIST + t] : static_cast<double>(xr[t]);
    }
}

// scalar value of phase p at buf index j (j >= 11)
inline double phase_at(const double* buf, std::ptrdiff_t j, const double* c) {
    double acc = buf[j] * c[0];
    for (int k = 1; k < TAPS; ++k) acc = acc + buf[j - k] * c[k];
    return acc;
}

#if FX_HAVE_VEC
typedef long long v4i __attribute__((vector_size(32)));

inline v4d load4(const double* p) {
    v4d v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline v4d splat(double a) { return v4d{a, a, a, a}; }
inline v4d vabs(v4d a) {
    const v4i mask = {0x7fffffffffffffffLL, 0x7fffffffffffffffLL, 0x7fffffffffffffffLL,
                      0x7fffffffffffffffLL};
    return (v4d)((v4i)a & mask);
}
// lane-wise "if (a > pk) pk = a" (a NaN never replaces pk, as in the scalar code)
inline v4d vmax(v4d pk, v4d a) { return a > pk ? a : pk; }
#endif

// Peak of |x| and of |phase values| over buf[11 .. 11 + m), merged into peak.
FX_CLONES double peak_block(const double* buf, std::ptrdiff_t m, const Taps& tp, double peak) {
    std::ptrdiff_t j = HIST;
    const std::ptrdiff_t end = HIST + m;
#if FX_HAVE_VEC
    if (m >= LANES) {
        v4d c[PH][TAPS];
        for (int p = 0; p < PH; ++p)
            for (int k = 0; k < TAPS; ++k) c[p][k] = splat(tp.c[p][k]);
        v4d pk = splat(0.0);
        for (; j + LANES <= end; j += LANES) {
            v4d x0 = load4(buf + j);
            pk = vmax(pk, vabs(x0));
            v4d acc[PH];
            for (int p = 0; p < PH; ++p) acc[p] = x0 * c[p][0];
            for (int k = 1; k < TAPS; ++k) {
                v4d xk = load4(buf + j - k);
                for (int p = 0; p < PH; ++p) acc[p] = acc[p] + xk * c[p][k];
            }
            for (int p = 0; p < PH; ++p) pk = vmax(pk, vabs(acc[p]));
        }
        for (int l = 0; l < LANES; ++l)
            if (pk[l] > peak) peak = pk[l];
    }
#endif
    for (; j < end; ++j) {
        double v = std::fabs(buf[j]);
        if (v > peak) peak = v;
        for (int p = 0; p < PH; ++p) {
            double a = std::fabs(phase_at(buf, j, tp.c[p]));
            if (a > peak) peak = a;
        }
    }
    return peak;
}

// Phase values of buf[11 .. 11 + m) into out[4 i + p].
FX_CLONES void oversample_block(const double* buf, std::ptrdiff_t m, const Taps& tp, double* out) {
    std::ptrdiff_t j = HIST;
    const std::ptrdiff_t end = HIST + m;
#if FX_HAVE_VEC
    if (m >= LANES) {
        v4d c[PH][TAPS];
        for (int p = 0; p < PH; ++p)
            for (int k = 0; k < TAPS; ++k) c[p][k] = splat(tp.c[p][k]);
        for (; j + LANES <= end; j += LANES) {
            v4d x0 = load4(buf + j);
            v4d acc[PH];
            for (int p = 0; p < PH; ++p) acc[p] = x0 * c[p][0];
            for (int k = 1; k < TAPS; ++k) {
                v4d xk = load4(buf + j - k);
                for (int p = 0; p < PH; ++p) acc[p] = acc[p] + xk * c[p][k];
            }
            double* o = out + PH * (j - HIST);
            for (int l = 0; l < LANES; ++l)
                for (int p = 0; p < PH; ++p) o[PH * l + p] = acc[p][l];
        }
    }
#endif
    for (; j < end; ++j)
        for (int p = 0; p < PH; ++p) out[PH * (j - HIST) + p] = phase_at(buf, j, tp.c[p]);
}

// segments per row so that rows * segs spreads over the threads
inline std::ptrdiff_t segments(std::ptrdiff_t rows, std::ptrdiff_t n, int threads) {
    if (threads <= 1 || rows < 1 || rows >= threads) return 1;
    std::ptrdiff_t want = (threads + rows - 1) / rows;
    return std::max<std::ptrdiff_t>(1, std::min(want, n / MIN_SEGMENT));
}

template <class T>
void peaks_of(const T* x, const double* hist, double* peaks, std::ptrdiff_t rows, std::ptrdiff_t n,
              const Taps& tp, int threads) {
    const std::ptrdiff_t segs = segments(rows, n, threads);
    std::vector<double> part(static_cast<size_t>(rows * segs), 0.0);
    parallel_for(rows * segs, threads, [&](std::ptrdiff_t item) {
        std::ptrdiff_t r = item / segs, s = item % segs;
        std::ptrdiff_t lo = n * s / segs, hi = n * (s + 1) / segs;
        std::vector<double> buf(static_cast<size_t>(HIST + std::min(TP_BLOCK, hi - lo)));
        double peak = 0.0;
        for (std::ptrdiff_t t0 = lo; t0 < hi; t0 += TP_BLOCK) {
            std::ptrdiff_t m = std::min(TP_BLOCK, hi - t0);
            fill(buf.data(), x + r * n, hist + r * HIST, t0, m);
            peak = peak_block(buf.data(), m, tp, peak);
        }
        part[item] = peak;
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
    parallel_for(rows * segs, threads, [&](std::ptrdiff_t item) {
        std::ptrdiff_t r = item / segs, s = item % segs;
        std::ptrdiff_t lo = n * s / segs, hi = n * (s + 1) / segs;
        std::vector<double> buf(static_cast<size_t>(HIST + std::min(TP_BLOCK, hi - lo)));
        for (std::ptrdiff_t t0 = lo; t0 < hi; t0 += TP_BLOCK) {
            std::ptrdiff_t m = std::min(TP_BLOCK, hi - t0);
            fill(buf.data(), x + r * n, hist + r * HIST, t0, m);
            oversample_block(buf.data(), m, tp, out + PH * (r * n + t0));
        }
    });
}

Taps taps_of(const py::array& phases) {
    const double* c = cdata_of<double>(phases, "phases", 2);
    if (phases.shape(0) != PH || phases.shape(1) != TAPS)
        throw std::invalid_argument("phases: expected shape (4, 12)");
    Taps tp;
    for (int p = 0; p < PH; ++p)
        for (int k = 0; k < TAPS; ++k) tp.c[p][k] = c[p * TAPS + k];
    return tp;
}

const double* hist_of(const py::array& x, const py::array& hist) {
    if (x.ndim() != 2) throw std::invalid_argument("x: expected a 2-D array");
    const double* h = cdata_of<double>(hist, "hist", 2);
    if (hist.shape(0) != x.shape(0) || hist.shape(1) != HIST)
        throw std::invalid_argument("hist: expected shape (rows, 11)");
    return h;
}

void true_peak(const py::array& x, const py::array& hist, py::array& peaks,
               const py::array& phases, int threads) {
    Taps tp = taps_of(phases);
    const double* h = hist_of(x, hist);
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

void oversample4(const py::array& x, const py::array& hist, py::array& out,
                 const py::array& phases, int threads) {
    Taps tp = taps_of(phases);
    const double* h = hist_of(x, hist);
    std::ptrdiff_t rows = x.shape(0), n = x.shape(1);
    double* o = data_of<double>(out, "out", 2);
    if (out.shape(0) != rows || out.shape(1) != PH * n)
        throw std::invalid_argument("out: expected shape (rows, 4 n)");
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
          "True peak per row: x (rows, n) float32/float64, hist (rows, 11) float64 (the samples "
          "before x), phases (4, 12) float64 -> peaks (rows,) float64, the max of |x| and of the "
          "|4x interpolated values|. GIL released.");
    m.def("truepeak_oversample", &oversample4, py::arg("x"), py::arg("hist"), py::arg("out"),
          py::arg("phases"), py::arg("threads") = 1,
          "4x oversampling: x (rows, n) float32/float64, hist (rows, 11) float64, phases (4, 12) "
          "float64 -> out (rows, 4 n) float64, out[r, 4 i + p] = phase p at input i. GIL "
          "released.");
}

}  // namespace fx
