// Dynamics: the gain envelope of the compressor / downward expander and the
// lookahead (optionally true-peak) limiter of fxcli.dsp.dynamics.
//
// Every value is computed with the operations, in the order, of the former numba
// kernels (float64, no FMA contraction, the same libm calls: log10 and pow), so the
// results are theirs bit for bit; a chunked run equals one run bit for bit (the
// state arrays are the whole memory). What changed is only the schedule:
//
// - dynamics_gain: per group the detector level of each frame (max over the
//   group's channels) and its log10, then the one-pole gain recurrence, then the
//   dB -> linear pow. Only the recurrence (and the rms mean square, per channel) is
//   sequential in time; the libm calls, most of the cost, are spread over threads
//   in blocks of frames.
// - limiter: the gain requirements (sample peak or true peak: the interpolator of
//   L phases x T taps passed in `h`, L a multiple of 4, at most 64; fxcli passes
//   fxcli.dsp.dynamics.limiter_interpolator: the rate-dependent sinc of
//   fxcli.dsp.truepeak.interpolator plus scipy's resample_poly(8) and FFmpeg's
//   ebur128 interpolators, 20-36 phases at 16-96 kHz, issue 17; every bound
//   below is derived from the phases passed in) in parallel blocks of frames,
//   then per group the sequential planner and exact output check, then the gain
//   applied to the delayed input (parallel blocks). Vectors
//   of 4 lanes hold 4 frames in the requirement stage and 4 interpolation phases
//   of one output point in the exact check (L / 4 vectors per point), whose window
//   of pending output points slides along a buffer instead of being shifted.
//   Issue 17 (speed, same bits): per-frame true peaks that cannot reach the
//   ceiling are replaced by their bound (tp_frames), and while nothing was
//   corrected for a whole window only the newest output point is checked (a
//   bound, else its exact value) and the window's parts are rebuilt by replaying
//   the exact check's operations when it is needed again (tp_group): ~5x faster
//   on mastered music, where corrections are rare.
//
// max over channels / phases / frames: NaN propagates where torch's amax /
// maximum propagated it (the requirement stage, formerly torch); values are >= 0
// (absolute values), so every other max is exact whatever its order.
#include "common.hpp"

#include <cmath>
#include <cstring>

namespace fx {
namespace {

// frames per work item of the parallel stages
constexpr std::ptrdiff_t DBLOCK = 4096;
// below this many samples in all, threads cost more than they save
constexpr std::ptrdiff_t DYN_PAR_MIN = 1 << 15;

inline int stage_threads(std::ptrdiff_t samples, int threads) {
    return samples < DYN_PAR_MIN ? 1 : std::max(threads, 1);
}

inline std::ptrdiff_t n_blocks(std::ptrdiff_t n) { return (n + DBLOCK - 1) / DBLOCK; }

// torch.amax / torch.maximum: NaN wins
inline double nanmax(double acc, double v) { return (v > acc || v != v) ? v : acc; }

// ---------------------------------------------------------------------------
// compressor / expander
// ---------------------------------------------------------------------------

constexpr double LEVEL_FLOOR_DB = -300.0;  // dynamics._LEVEL_FLOOR_DB

struct DynParams {
    bool rms;
    double a_rms;
    int kind;  // 0 compressor, 1 downward expander / gate
    double thr, ratio, knee, a_att, a_rel, hold_n, floor_db, makeup;
};

// det (G, C, n) -> out (G, n) linear gain; ms (G, C), env (G,), hold (G,) updated.
template <class T>
void dyn_gain(const T* det, std::ptrdiff_t G, std::ptrdiff_t C, std::ptrdiff_t n,
              const DynParams& P, double* ms, double* env, double* hold, double* out,
              int threads) {
    const std::ptrdiff_t nb = n_blocks(n);
    const int th = stage_threads(G * C * n, threads);
    // 1. level of every frame (the largest of the group's channels) in dB -> out
    if (P.rms) {
        // mean square, sequential per channel: out = max over channels (then dB below)
        parallel_for(G, th, [&](std::ptrdiff_t g) {
            double* o = out + g * n;
            for (std::ptrdiff_t t = 0; t < n; ++t) o[t] = 0.0;
            for (std::ptrdiff_t c = 0; c < C; ++c) {
                const T* d = det + (g * C + c) * n;
                double m = ms[g * C + c];
                for (std::ptrdiff_t t = 0; t < n; ++t) {
                    double v = static_cast<double>(d[t]);
                    m = P.a_rms * m + (1.0 - P.a_rms) * (v * v);
                    if (m > o[t]) o[t] = m;
                }
                ms[g * C + c] = m;
            }
        });
        parallel_for(G * nb, th, [&](std::ptrdiff_t item) {
            std::ptrdiff_t g = item / nb, t0 = (item % nb) * DBLOCK;
            std::ptrdiff_t t1 = std::min(n, t0 + DBLOCK);
            double* o = out + g * n;
            for (std::ptrdiff_t t = t0; t < t1; ++t) {
                double lev = o[t];
                o[t] = lev > 1e-30 ? 10.0 * std::log10(lev) : LEVEL_FLOOR_DB;
            }
        });
    } else {
        parallel_for(G * nb, th, [&](std::ptrdiff_t item) {
            std::ptrdiff_t g = item / nb, t0 = (item % nb) * DBLOCK;
            std::ptrdiff_t t1 = std::min(n, t0 + DBLOCK);
            double* o = out + g * n;
            for (std::ptrdiff_t t = t0; t < t1; ++t) o[t] = 0.0;
            for (std::ptrdiff_t c = 0; c < C; ++c) {
                const T* d = det + (g * C + c) * n;
                for (std::ptrdiff_t t = t0; t < t1; ++t) {
                    double v = std::fabs(static_cast<double>(d[t]));
                    if (v > o[t]) o[t] = v;
                }
            }
            for (std::ptrdiff_t t = t0; t < t1; ++t) {
                double lev = o[t];
                o[t] = lev > 1e-15 ? 20.0 * std::log10(lev) : LEVEL_FLOOR_DB;
            }
        });
    }
    // 2. static curve and the one-pole smoothing in dB (sequential): out = y in dB
    const double slope = 1.0 / P.ratio - 1.0;
    parallel_for(G, th, [&](std::ptrdiff_t g) {
        double* o = out + g * n;
        double y = env[g];
        double h = hold[g];
        for (std::ptrdiff_t t = 0; t < n; ++t) {
            double dx = o[t] - P.thr;
            double gs;
            if (P.kind == 0) {  // compressor
                if (2.0 * dx > P.knee) {
                    gs = slope * dx;
                } else if (P.knee > 0.0 && 2.0 * std::fabs(dx) <= P.knee) {
                    double q = dx + P.knee / 2.0;
                    gs = slope * q * q / (2.0 * P.knee);
                } else {
                    gs = 0.0;
                }
                if (gs < y)
                    y = P.a_att * y + (1.0 - P.a_att) * gs;
                else
                    y = P.a_rel * y + (1.0 - P.a_rel) * gs;
            } else {  // downward expander / gate
                if (dx < 0.0) {
                    gs = (P.ratio - 1.0) * dx;
                    if (gs < P.floor_db) gs = P.floor_db;
                } else {
                    gs = 0.0;
                }
                if (gs >= y) {
                    h = P.hold_n;
                    y = P.a_att * y + (1.0 - P.a_att) * gs;
                } else if (h > 0) {
                    h -= 1;
                } else {
                    y = P.a_rel * y + (1.0 - P.a_rel) * gs;
                }
            }
            o[t] = y;
        }
        env[g] = y;
        hold[g] = h;
    });
    // 3. dB -> linear, makeup included
    parallel_for(G * nb, th, [&](std::ptrdiff_t item) {
        std::ptrdiff_t g = item / nb, t0 = (item % nb) * DBLOCK;
        std::ptrdiff_t t1 = std::min(n, t0 + DBLOCK);
        double* o = out + g * n;
        for (std::ptrdiff_t t = t0; t < t1; ++t) o[t] = std::pow(10.0, (o[t] + P.makeup) / 20.0);
    });
}

void dynamics_gain(const py::array& det, bool rms, double a_rms, int kind, double thr,
                   double ratio, double knee, double a_att, double a_rel, double hold_n,
                   double floor_db, double makeup, py::array& ms, py::array& env, py::array& hold,
                   py::array& out, int threads) {
    if (det.ndim() != 3) throw std::invalid_argument("det: expected a 3-D array (G, C, n)");
    std::ptrdiff_t G = det.shape(0), C = det.shape(1), n = det.shape(2);
    double* msp = data_of<double>(ms, "ms", 2);
    double* envp = data_of<double>(env, "env", 1);
    double* holdp = data_of<double>(hold, "hold", 1);
    double* outp = data_of<double>(out, "out", 2);
    if (ms.shape(0) != G || ms.shape(1) != C) throw std::invalid_argument("ms: expected (G, C)");
    if (env.shape(0) != G || hold.shape(0) != G)
        throw std::invalid_argument("env, hold: expected (G,)");
    if (out.shape(0) != G || out.shape(1) != n) throw std::invalid_argument("out: expected (G, n)");
    DynParams P{rms, a_rms, kind, thr, ratio, knee, a_att, a_rel, hold_n, floor_db, makeup};
    if (is_f32(det)) {
        const float* d = cdata_of<float>(det, "det", 3);
        py::gil_scoped_release nogil;
        dyn_gain(d, G, C, n, P, msp, envp, holdp, outp, threads);
    } else {
        const double* d = cdata_of<double>(det, "det", 3);
        py::gil_scoped_release nogil;
        dyn_gain(d, G, C, n, P, msp, envp, holdp, outp, threads);
    }
}

// ---------------------------------------------------------------------------
// lookahead limiter
// ---------------------------------------------------------------------------

// The interpolator (true-peak mode) is L phases x T taps, taken at run time
// (LimParams: L a multiple of 4, the vectors below hold 4 phases); LAG = T - 1
// frames of support before a point, NPT = T pending output points per step.

// Four doubles (the 4 phases of one output point, or 4 consecutive frames): a
// vector, or a plain struct where the compiler has no vector extension. Lane by
// lane the arithmetic is the scalar code's.
#if FX_HAVE_VEC
using d4 = v4d;
typedef long long v4l __attribute__((vector_size(32)));
inline d4 splat(double v) { return d4{v, v, v, v}; }
inline v4l bits_of(d4 v) {
    v4l b;
    std::memcpy(&b, &v, sizeof v);
    return b;
}
inline d4 from_bits(v4l b) {
    d4 v;
    std::memcpy(&v, &b, sizeof v);
    return v;
}
inline d4 abs4(d4 v) { return from_bits(bits_of(v) & ~bits_of(splat(-0.0))); }
// lane-wise: m ? a : b
inline d4 select4(v4l m, d4 a, d4 b) { return from_bits((m & bits_of(a)) | (~m & bits_of(b))); }
inline v4l gt_mask(d4 a, d4 b) { return a > b; }
inline v4l lt_mask(d4 a, d4 b) { return a < b; }
inline v4l nan_mask(d4 a) { return a != a; }
inline bool any_mask(v4l m) {
#if defined(__clang__)
    m |= __builtin_shufflevector(m, m, 2, 3, 0, 1);
    m |= __builtin_shufflevector(m, m, 1, 0, 3, 2);
#else
    m |= __builtin_shuffle(m, v4l{2, 3, 0, 1});
    m |= __builtin_shuffle(m, v4l{1, 0, 3, 2});
#endif
    return m[0] != 0;
}
inline v4l no_mask() { return v4l{0, 0, 0, 0}; }
inline void or_mask(v4l& m, v4l b) { m |= b; }
#else
struct d4 {
    double v[4];
    double& operator[](int i) { return v[i]; }
    double operator[](int i) const { return v[i]; }
};
inline d4 operator+(d4 a, d4 b) { return d4{{a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]}}; }
inline d4 operator-(d4 a, d4 b) { return d4{{a[0] - b[0], a[1] - b[1], a[2] - b[2], a[3] - b[3]}}; }
inline d4 operator*(d4 a, d4 b) { return d4{{a[0] * b[0], a[1] * b[1], a[2] * b[2], a[3] * b[3]}}; }
inline d4 operator/(d4 a, d4 b) { return d4{{a[0] / b[0], a[1] / b[1], a[2] / b[2], a[3] / b[3]}}; }
inline d4 splat(double v) { return d4{{v, v, v, v}}; }
inline d4 abs4(d4 v) {
    return d4{{std::fabs(v[0]), std::fabs(v[1]), std::fabs(v[2]), std::fabs(v[3])}};
}
struct v4l {
    bool m[4];
};
inline d4 select4(v4l m, d4 a, d4 b) {
    return d4{{m.m[0] ? a[0] : b[0], m.m[1] ? a[1] : b[1], m.m[2] ? a[2] : b[2],
               m.m[3] ? a[3] : b[3]}};
}
inline v4l gt_mask(d4 a, d4 b) { return v4l{{a[0] > b[0], a[1] > b[1], a[2] > b[2], a[3] > b[3]}}; }
inline v4l lt_mask(d4 a, d4 b) { return v4l{{a[0] < b[0], a[1] < b[1], a[2] < b[2], a[3] < b[3]}}; }
inline v4l nan_mask(d4 a) { return v4l{{a[0] != a[0], a[1] != a[1], a[2] != a[2], a[3] != a[3]}}; }
inline bool any_mask(v4l m) { return m.m[0] || m.m[1] || m.m[2] || m.m[3]; }
inline v4l no_mask() { return v4l{{false, false, false, false}}; }
inline void or_mask(v4l& m, v4l b) {
    for (int i = 0; i < 4; ++i) m.m[i] = m.m[i] || b.m[i];
}
#endif

inline d4 ld4(const double* p) {
    d4 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline void st4(double* p, d4 v) { std::memcpy(p, &v, sizeof v); }
// lane-wise nanmax
inline d4 nanmax4(d4 acc, d4 v) {
    v4l m = gt_mask(v, acc);
    or_mask(m, nan_mask(v));
    return select4(m, v, acc);
}

struct LimParams {
    std::ptrdiff_t G, C, n, D, ramp;
    bool true_peak;
    double ceil, tgt, a_rel, snap, solve;
    const double* h;  // (L, T) interpolator taps
    int L = 4, T = 12, LAG = 11;  // phases, taps per phase, T - 1
};

// The delayed input xx (G, C, D + n) = concat(pending (G, C, D) float64, x (G, C, n)),
// never materialized: copy(row, k0, len, dst) = xx[row, k0 : k0 + len] as float64.
template <class T>
struct Input {
    const double* pend;
    const T* x;
    std::ptrdiff_t D, n;
    void copy(std::ptrdiff_t row, std::ptrdiff_t k0, std::ptrdiff_t len, double* dst) const {
        std::ptrdiff_t k = k0, end = k0 + len;
        const double* pr = pend + row * D;
        for (; k < std::min(end, D); ++k) *dst++ = pr[k];
        const T* xr = x + row * n;
        for (; k < end; ++k) *dst++ = static_cast<double>(xr[k - D]);
    }
    double at(std::ptrdiff_t row, std::ptrdiff_t k) const {
        return k < D ? pend[row * D + k] : static_cast<double>(x[row * n + k - D]);
    }
};

// Largest |oversampled value| of every new frame (over the group's channels and the
// L phases): tp[t - t0] for t in [t0, t1). Phase p of frame t:
// xx[D + t] h[p, 0] + xx[D + t - 1] h[p, 1] + ... + xx[D + t - T + 1] h[p, T - 1],
// summed in tap order (truepeak.oversample). Four frames per vector.
//
// Pruning: the figure only matters where it exceeds the ceiling (the requirement
// is 1 at or under it, and the largest figure of a window is the same whether the
// ones under the ceiling are exact or not), so a block of PB frames whose bound
// l1 max|x| (l1 = max_p sum_k |h[p, k]|, the max over its supports and channels;
// times 1 + 1e-9 for rounding) is under the ceiling gets that bound instead (an
// upper bound of every value, as the limiter's fast check needs). Frames from
// `exact_from` on (the state's, tpq) are always exact; NaN and inf are never pruned.
template <class T>
FX_CLONES void tp_frames(const Input<T>& in, const LimParams& P, std::ptrdiff_t g,
                         std::ptrdiff_t t0, std::ptrdiff_t t1, std::ptrdiff_t exact_from,
                         double* tp, double* buf) {
    constexpr std::ptrdiff_t PB = 8;
    const int PH = P.L, TAPS = P.T, LAG = P.LAG;
    // hs[4 (p * TAPS + k) + l] = h[p, k] (4 copies; loaded unaligned with ld4)
    std::vector<double> hs(static_cast<size_t>(4 * PH * TAPS));
    // taps lo[p] .. hi[p] - 1 of phase p hold its non-zero coefficients (the
    // limiter's union of meters pads shorter filters with zeros: 21 of 48 taps for
    // resample_poly's phases, 32 for FFmpeg's, 1 for the sinc's phase 0)
    std::vector<int> lo(static_cast<size_t>(PH), 0), hi(static_cast<size_t>(PH), 0);
    double l1 = 1.0;
    for (int p = 0; p < PH; ++p) {
        double s = 0.0;
        for (int k = 0; k < TAPS; ++k) {
            const double hk = P.h[p * TAPS + k];
            s += std::fabs(hk);
            for (int l = 0; l < 4; ++l) hs[4 * (p * TAPS + k) + l] = hk;
            if (hk != 0.0) {
                if (hi[p] == 0) lo[p] = k;
                hi[p] = k + 1;
            }
        }
        l1 = std::max(l1, s);
    }
    const std::ptrdiff_t len = t1 - t0;
    const std::ptrdiff_t nblk = len / PB;  // whole blocks (the rest is never pruned)
    // bnd[b]: the block's bound (max over channels), 0 where it is not pruned;
    // fin[c nblk + b]: channel c's supports of block b hold finite values only
    std::vector<double> bnd(static_cast<size_t>(nblk), 0.0);
    std::vector<char> fin(static_cast<size_t>(P.C * nblk), 0);
    for (std::ptrdiff_t c = 0; c < P.C; ++c) {
        // buf[LAG + t - k] = xx[D + t0 + t - k]
        in.copy(g * P.C + c, P.D + t0 - LAG, len + LAG, buf);
        for (std::ptrdiff_t b = 0; b < nblk; ++b) {
            const double* xb = buf + b * PB;  // the supports of frames b PB .. b PB + PB - 1
            double mx = 0.0;
            bool finite = true;
            for (std::ptrdiff_t k = 0; k < PB + LAG; ++k) {
                double v = std::fabs(xb[k]);
                if (!(v <= 1e300)) finite = false;
                if (v > mx) mx = v;
            }
            fin[static_cast<size_t>(c * nblk + b)] = finite;
            double bound = finite ? mx * l1 * (1.0 + 1e-9) : INFINITY;
            bnd[b] = c == 0 ? bound : std::max(bnd[b], bound);
        }
    }
    for (std::ptrdiff_t b = 0; b < nblk; ++b)
        if (!(bnd[b] < P.ceil) || t0 + (b + 1) * PB > exact_from) bnd[b] = 0.0;
    for (std::ptrdiff_t c = 0; c < P.C; ++c) {
        if (P.C > 1) in.copy(g * P.C + c, P.D + t0 - LAG, len + LAG, buf);
        std::ptrdiff_t t = 0;
        for (; t + 4 <= len; t += 4) {
            if (t / PB < nblk && bnd[t / PB] > 0.0) continue;
            const double* xt = buf + LAG + t;
            d4 m = splat(0.0);
            // finite supports: the zero taps are skipped. Every product they add is
            // +-0, which leaves a sum unchanged except for the sign of a zero sum,
            // and |.| follows, so the value is the same; with inf or NaN in the
            // support (0 * inf is NaN) every tap is summed, as before.
            const bool skip_zeros = t / PB < nblk && fin[static_cast<size_t>(c * nblk + t / PB)];
            for (int p = 0; p < PH; ++p) {
                const double* hp = hs.data() + 4 * p * TAPS;
                d4 acc;
                if (skip_zeros) {
                    if (hi[p] == 0) {
                        acc = splat(0.0);
                    } else {
                        acc = ld4(xt - lo[p]) * ld4(hp + 4 * lo[p]);
                        for (int k = lo[p] + 1; k < hi[p]; ++k)
                            acc = acc + ld4(xt - k) * ld4(hp + 4 * k);
                    }
                } else {
                    acc = ld4(xt) * ld4(hp);
                    for (int k = 1; k < TAPS; ++k) acc = acc + ld4(xt - k) * ld4(hp + 4 * k);
                }
                acc = abs4(acc);
                m = p == 0 ? acc : nanmax4(m, acc);
            }
            st4(tp + t, c == 0 ? m : nanmax4(ld4(tp + t), m));
        }
        for (; t < len; ++t) {
            const double* xt = buf + LAG + t;
            double m = 0.0;
            for (int p = 0; p < PH; ++p) {
                const double* hp = P.h + p * TAPS;
                double acc = xt[0] * hp[0];
                for (int k = 1; k < TAPS; ++k) acc = acc + xt[-k] * hp[k];
                acc = std::fabs(acc);
                m = p == 0 ? acc : nanmax(m, acc);
            }
            tp[t] = c == 0 ? m : nanmax(tp[t], m);
        }
    }
    for (std::ptrdiff_t b = 0; b < nblk; ++b)
        if (bnd[b] > 0.0)
            for (std::ptrdiff_t k = 0; k < PB; ++k) tp[b * PB + k] = bnd[b];
}

// win[t] = max(v[t : t + 12]), t < len (NaN wins)
FX_CLONES void window_max(const double* v, std::ptrdiff_t len, int LAG, double* win) {
    std::ptrdiff_t t = 0;
    for (; t + 4 <= len; t += 4) {
        d4 w = ld4(v + t);
        for (int k = 1; k <= LAG; ++k) w = nanmax4(w, ld4(v + t + k));
        st4(win + t, w);
    }
    for (; t < len; ++t) {
        double w = v[t];
        for (int k = 1; k <= LAG; ++k) w = nanmax(w, v[t + k]);
        win[t] = w;
    }
}

// Gain requirements of the frames t0 + t, t < len: (1 / peak) * target where the
// peak is over the ceiling, else 1 (torch.where(peak > ceil, target / peak, 1):
// torch's scalar / tensor is tensor.reciprocal() * scalar, rounded twice).
// peak[t] = nanmax(a[t], max over channels of |b_c[t]|), b_c = xx[row c, k0 + t]
// (a == nullptr: no a).
template <class T>
FX_CLONES void requirements(const Input<T>& in, const LimParams& P, std::ptrdiff_t g,
                            std::ptrdiff_t k0, std::ptrdiff_t len, const double* a, double* r,
                            double* peak, double* buf) {
    for (std::ptrdiff_t c = 0; c < P.C; ++c) {
        in.copy(g * P.C + c, k0, len, buf);
        std::ptrdiff_t t = 0;
        for (; t + 4 <= len; t += 4) {
            d4 v = abs4(ld4(buf + t));
            st4(peak + t, c == 0 ? v : nanmax4(ld4(peak + t), v));
        }
        for (; t < len; ++t) {
            double v = std::fabs(buf[t]);
            peak[t] = c == 0 ? v : nanmax(peak[t], v);
        }
    }
    const d4 one = splat(1.0), cv = splat(P.ceil), tv = splat(P.tgt);
    std::ptrdiff_t t = 0;
    for (; t + 4 <= len; t += 4) {
        d4 pk = a ? nanmax4(ld4(a + t), ld4(peak + t)) : ld4(peak + t);
        st4(r + t, select4(gt_mask(pk, cv), (one / pk) * tv, one));
    }
    for (; t < len; ++t) {
        double pk = a ? nanmax(a[t], peak[t]) : peak[t];
        r[t] = pk > P.ceil ? (1.0 / pk) * P.tgt : 1.0;
    }
}

// ---- the exact output check (true-peak mode) ----
//
// Pending output points j = 0..LAG (point j: output sample i + j at step i), per
// channel c: F(c, j) / U(c, j) the finalized / unfinalized parts (4 phases).
// Storage: W points per channel, the window starts at offset `o` and slides.
struct Window {
    std::ptrdiff_t C, W;
    int PH, LAG, NPT;
    std::ptrdiff_t o = 0;
    std::vector<double> F, U;  // (C, W, L), (C, W, L)
    Window(std::ptrdiff_t c, std::ptrdiff_t w, int ph, int lag)
        : C(c), W(w), PH(ph), LAG(lag), NPT(lag + 1), F(static_cast<size_t>(c * w * ph)),
          U(static_cast<size_t>(c * w * ph)) {}
    double* f(std::ptrdiff_t c, std::ptrdiff_t j) { return F.data() + (c * W + o + j) * PH; }
    double* u(std::ptrdiff_t c, std::ptrdiff_t j) { return U.data() + (c * W + o + j) * PH; }
    // room for one more point at the end of the window
    void make_room() {
        if (o + NPT <= W) return;
        for (std::ptrdiff_t c = 0; c < C; ++c) {
            std::memmove(F.data() + c * W * PH, F.data() + (c * W + o) * PH,
                         LAG * PH * sizeof(double));
            std::memmove(U.data() + c * W * PH, U.data() + (c * W + o) * PH,
                         LAG * PH * sizeof(double));
        }
        o = 0;
    }
};

// _excess: largest |fin + s un| - ceil over all points (<= 0: none above the ceiling)
inline double excess(Window& w, double s, double ceil) {
    const int PH = w.PH, NPT = w.NPT;
    double e = -ceil;
    for (std::ptrdiff_t c = 0; c < w.C; ++c)
        for (int p = 0; p < PH; ++p)
            for (int j = 0; j < NPT; ++j) {
                double v = std::fabs(w.f(c, j)[p] + s * w.u(c, j)[p]) - ceil;
                if (v > e) e = v;
            }
    return e;
}

// excess(w, 1.0, ceil) > 0.0, vectorized (the common case: nothing to correct)
inline bool above_at_one(Window& w, double ceil) {
    const int PH = w.PH, NPT = w.NPT;
    const d4 one = splat(1.0), cv = splat(ceil), zero = splat(0.0);
    v4l m = no_mask();
    for (std::ptrdiff_t c = 0; c < w.C; ++c)
        for (int j = 0; j < NPT; ++j)
            for (int v = 0; v < PH; v += 4)
                or_mask(m, gt_mask(abs4(ld4(w.f(c, j) + v) + one * ld4(w.u(c, j) + v)) - cv,
                                   zero));
    return any_mask(m);
}

// _fit_interval
inline double fit_interval(Window& w, double ceil, double tgt, double solve) {
    const int PH = w.PH, NPT = w.NPT;
    double lo = 0.0, hi = 1.0;
    for (std::ptrdiff_t c = 0; c < w.C; ++c)
        for (int p = 0; p < PH; ++p)
            for (int j = 0; j < NPT; ++j) {
                double f = w.f(c, j)[p];
                double u = w.u(c, j)[p];
                // solve for a hair under the bound so rounding cannot land above it
                double bound = (std::fabs(f + u) > ceil ? tgt : ceil) * solve;
                if (u == 0.0) {
                    if (std::fabs(f) > bound && std::fabs(f) > ceil) return -1.0;
                    continue;
                }
                double a = (bound - f) / u;
                double b = (-bound - f) / u;
                if (a > b) std::swap(a, b);
                if (a > lo) lo = a;
                if (b < hi) hi = b;
            }
    if (lo <= hi && excess(w, hi, ceil) <= 0.0) return hi;
    return -1.0;
}

// _scale_to_fit
inline double scale_to_fit(Window& w, double ceil, double tgt, double solve, bool& above) {
    const int PH = w.PH, NPT = w.NPT;
    above = above_at_one(w, ceil);
    if (!above) return 1.0;
    double s = fit_interval(w, ceil, tgt, solve);
    if (s >= 0.0) return s;
    s = fit_interval(w, ceil, ceil, solve);
    if (s >= 0.0) return s;
    // no scale satisfies every point: least excess among the candidates
    double best = 1.0;
    double best_e = excess(w, 1.0, ceil);
    for (std::ptrdiff_t c = 0; c < w.C; ++c)
        for (int p = 0; p < PH; ++p)
            for (int j = 0; j < NPT; ++j) {
                double f = w.f(c, j)[p];
                double u = w.u(c, j)[p];
                if (u == 0.0) continue;
                double ts[2] = {(ceil * solve - f) / u, (-ceil * solve - f) / u};
                for (double t : ts) {
                    if (0.0 <= t && t < 1.0) {
                        double e = excess(w, t, ceil);
                        if (e < best_e) {
                            best_e = e;
                            best = t;
                        }
                    }
                }
            }
    return best;
}

// Sliding-window minimum of rr and the planner (release, then linear ramps that
// reach each requirement of the window [i, i + ramp] in time).
struct Planner {
    static constexpr int CHUNK = 16;
    const double* rr;
    std::ptrdiff_t ramp;
    double a_rel, snap;
    std::vector<std::ptrdiff_t> dq;
    std::ptrdiff_t head = 0, tail = 0;
    Planner(const double* r, std::ptrdiff_t rp, std::ptrdiff_t n, double a, double s)
        : rr(r), ramp(rp), a_rel(a), snap(s), dq(static_cast<size_t>(rp + n + 1)) {
        for (std::ptrdiff_t k = 0; k < ramp; ++k) push(k);
    }
    void push(std::ptrdiff_t k) {
        while (tail > head && rr[dq[tail - 1]] >= rr[k]) --tail;
        dq[tail++] = k;
    }
    double plan(std::ptrdiff_t i, double gp) {
        push(i + ramp);
        if (dq[head] < i) ++head;
        double cand = 1.0;
        if (gp < 1.0) {
            cand = std::pow(gp, a_rel);
            if (cand > snap) cand = 1.0;
        }
        if (rr[dq[head]] < cand) {  // else no requirement of the window binds
            const double* r = rr + i;
            std::ptrdiff_t j = 0;
            while (j <= ramp) {
                // CHUNK requirements at a time: none under cand leaves cand as it is
                if (j + CHUNK <= ramp + 1) {
                    const d4 cv = splat(cand);
                    v4l m = lt_mask(ld4(r + j), cv);
                    for (int k = 4; k < CHUNK; k += 4) or_mask(m, lt_mask(ld4(r + j + k), cv));
                    if (!any_mask(m)) {
                        j += CHUNK;
                        continue;
                    }
                }
                for (std::ptrdiff_t e = std::min(j + CHUNK, ramp + 1); j < e; ++j) {
                    double rj = r[j];
                    if (rj < cand) {
                        double need = gp + (rj - gp) / static_cast<double>(j + 1);
                        if (need < cand) cand = need;
                    }
                }
            }
        }
        return cand;
    }
};

// Sample-peak mode: the planned gains are final.
FX_CLONES void sp_group(const LimParams& P, const double* rr, double& gp_state, double* out) {
    Planner pl(rr, P.ramp, P.n, P.a_rel, P.snap);
    double gp = gp_state;
    for (std::ptrdiff_t i = 0; i < P.n; ++i) {
        gp = pl.plan(i, gp);
        out[i] = gp;
    }
    gp_state = gp;
}

// True-peak mode: plan, check and finalize the gains of the group's n frames.
// plan (LAG,), fin / unf (C, PH, LAG): the state; out (n,) final gains; tpf (n,):
// for each new frame t an upper bound of |every interpolated value| of the output
// point whose newest sample is frame t (tp_frames: the exact figure, or a bound
// where that cannot reach the ceiling).
//
// Two modes give the same gains, bit for bit:
// - exact: the check above (every pending point's finalized and unfinalized parts
//   F, U kept up to date at every step, scale_to_fit on all of them);
// - fast: once no correction was made for LAG + 1 steps and every point of the
//   window entered "safe" (its value, plus a margin for the rounding of F + U
//   later, at or under the ceiling), the window's values cannot change until the
//   next correction, and a correction needs a new point above the ceiling. So
//   only the newest point is checked: first by a cheap bound (its gains vary
//   by at most S per sample: |value| <= g_c tp + S M1 X, g_c the gain at the
//   centre tap, M1 = max_p sum_k |h[p, k]| |k - T/2|, X the largest |x| of the
//   support), else exactly. F and U are not kept; when a new point is not safe
//   (and at the end of the call, for the state) they are rebuilt by replaying
//   exactly the operations the exact mode would have made since the window's
//   points entered (their entry sums and the finalizations since), and the
//   exact mode takes over.
template <class T>
FX_CLONES void tp_group(const Input<T>& in, const LimParams& P, std::ptrdiff_t g,
                        const double* rr, const double* tpf, double& gp_state, double* plan,
                        double* fin, double* unf, double* out) {
    const std::ptrdiff_t C = P.C, n = P.n;
    const int PH = P.L, TAPS = P.T, LAG = P.LAG, NV = P.L / 4;
    // hc[4 (j * NV + v) + l] = h[4 v + l, j] (loaded unaligned with ld4)
    std::vector<double> hcv(static_cast<size_t>(4 * TAPS * NV));
    for (int j = 0; j < TAPS; ++j)
        for (int v = 0; v < NV; ++v)
            for (int l = 0; l < 4; ++l) hcv[4 * (j * NV + v) + l] = P.h[(4 * v + l) * TAPS + j];
    auto hc = [&](int idx) { return ld4(hcv.data() + 4 * idx); };
    // bound constants: l1 = max_p sum_k |h[p, k]|, M1 (see above), centre tap kc
    const int kc = TAPS / 2;
    double l1 = 1.0, m1 = 0.0;
    for (int p = 0; p < PH; ++p) {
        double s1 = 0.0, sm = 0.0;
        for (int k = 0; k < TAPS; ++k) {
            s1 += std::fabs(P.h[p * TAPS + k]);
            sm += std::fabs(P.h[p * TAPS + k]) * std::fabs(static_cast<double>(k - kc));
        }
        l1 = std::max(l1, s1);
        m1 = std::max(m1, sm);
    }
    // far more than the rounding of any value (~1e-14 l1 X): a point this close to
    // the ceiling is checked exactly
    const double rel_margin = 1e-9 * l1;
    const double ceil = P.ceil;
    Window w(C, LAG + 1 + 64, PH, LAG);  // F, U: ~14 KB each per 8 phases (stereo)
    for (int q = 0; q < LAG; ++q)
        for (std::ptrdiff_t c = 0; c < C; ++c)
            for (int p = 0; p < PH; ++p) {
                w.f(c, q)[p] = fin[(c * PH + p) * LAG + q];
                w.u(c, q)[p] = unf[(c * PH + p) * LAG + q];
            }
    // gall[k]: the gain of frame k (planned, then finalized: out[k] = gall[k])
    std::vector<double> gall(static_cast<size_t>(n + LAG));
    for (int q = 0; q < LAG; ++q) gall[q] = plan[q];
    // Blocks of DBLOCK steps [i0, i1): xb[c][k - i0 + LAG] = xx[c, k] for
    // k in [i0 - LAG, i1 + LAG) (0 before the start; the steps of a block read
    // frames i - LAG .. i + LAG); wx[i - i0] = max over the channels and frames
    // i .. i + LAG of |xx| (NaN wins).
    const std::ptrdiff_t xs = DBLOCK + 2 * LAG;
    std::vector<double> xb(static_cast<size_t>(C * xs)), ax(static_cast<size_t>(xs)),
        wx(static_cast<size_t>(DBLOCK));
    std::ptrdiff_t i0 = 0;
    auto load_block = [&](std::ptrdiff_t b0, std::ptrdiff_t b1) {
        i0 = b0;
        const std::ptrdiff_t k0 = std::max<std::ptrdiff_t>(b0 - LAG, 0), k1 = b1 + LAG;
        for (std::ptrdiff_t c = 0; c < C; ++c) {
            double* xc = xb.data() + c * xs - (b0 - LAG);  // xc[k] = xx[c, k]
            for (std::ptrdiff_t k = b0 - LAG; k < k0; ++k) xc[k] = 0.0;
            in.copy(g * C + c, k0, k1 - k0, xc + k0);
            for (std::ptrdiff_t k = b0; k < k1; ++k) {
                double v = std::fabs(xc[k]);
                ax[k - b0] = c == 0 ? v : nanmax(ax[k - b0], v);
            }
        }
        window_max(ax.data(), b1 - b0, LAG, wx.data());
    };
    // xx[c, k] for k in the current block's range
    auto xat = [&](std::ptrdiff_t c) { return xb.data() + c * xs - (i0 - LAG); };
    // the entry sum of the point whose support is frames e .. e + LAG (exact mode's
    // order): u[v] for channel c
    auto entry = [&](std::ptrdiff_t c, std::ptrdiff_t e, int v) {
        const double* xr = xat(c) + e;
        const double* pw = gall.data() + e;
        d4 u = splat(0.0);
        for (int q = 0; q <= LAG; ++q) u = u + hc((LAG - q) * NV + v) * splat(pw[q] * xr[q]);
        return u;
    };
    // window points j = 0 .. LAG - 1 at step i (points i + j), rebuilt from their
    // entry at step i + j - LAG and the finalizations of frames i + j - LAG .. i - 1
    auto rebuild = [&](std::ptrdiff_t i) {
        w.o = 0;
        for (std::ptrdiff_t c = 0; c < C; ++c) {
            const double* xc = xat(c);
            for (int j = 0; j < LAG; ++j) {
                const std::ptrdiff_t e = i + j - LAG;
                for (int v = 0; v < NV; ++v) {
                    d4 u = entry(c, e, v);
                    d4 f = splat(0.0);
                    for (std::ptrdiff_t k = e; k < i; ++k) {
                        d4 d = hc(static_cast<int>(i + j - k) * NV + v) * splat(gall[k] * xc[k]);
                        f = f + d;
                        u = u - d;
                    }
                    st4(w.f(c, j) + 4 * v, f);
                    st4(w.u(c, j) + 4 * v, u);
                }
            }
        }
    };
    // S: the largest |gain step| of the newest point's support (a monotonic deque
    // of the steps dk = |gall[k + 1] - gall[k]|, fast mode only)
    std::vector<std::ptrdiff_t> dq(static_cast<size_t>(n + LAG));
    std::ptrdiff_t dh = 0, dt = 0;
    auto dstep = [&](std::ptrdiff_t k) { return std::fabs(gall[k + 1] - gall[k]); };
    auto dpush = [&](std::ptrdiff_t k) {
        const double v = dstep(k);
        while (dt > dh && !(dstep(dq[dt - 1]) > v)) --dt;
        dq[dt++] = k;
    };
    Planner pl(rr, P.ramp, n, P.a_rel, P.snap);
    double gp = gp_state;
    bool fast = false;
    std::ptrdiff_t quiet = 0;
    const std::ptrdiff_t t_off = P.ramp + LAG;  // tpf frame of the newest point: i - t_off
    for (std::ptrdiff_t i = 0; i < n; ++i) {
        gp = pl.plan(i, gp);
        gall[i + LAG] = gp;
        double* pw = gall.data() + i;
        if (i == i0 + DBLOCK || i == 0) load_block(i, std::min(n, i + DBLOCK));
        const double margin = rel_margin * wx[i - i0];
        if (fast) {
            dpush(i + LAG - 1);
            while (dq[dh] < i) ++dh;
            bool safe = false;
            const std::ptrdiff_t t = i - t_off;
            if (t >= 0) {
                const double b = pw[LAG - kc] * tpf[t] + dstep(dq[dh]) * m1 * wx[i - i0];
                safe = b + margin <= ceil;
            }
            if (!safe) {
                safe = true;
                for (std::ptrdiff_t c = 0; c < C && safe; ++c)
                    for (int v = 0; v < NV; ++v) {
                        d4 u = entry(c, i, v);
                        for (int l = 0; l < 4; ++l)
                            if (!(std::fabs(u[l]) + margin <= ceil)) safe = false;
                    }
            }
            if (safe) {
                out[i] = pw[0];
                continue;
            }
            rebuild(i);
            fast = false;
            quiet = 0;
        }
        w.make_room();
        // Output points i + j, j = 0..LAG (j = LAG enters now, its support is
        // entirely unfinalized): value = fin + un, exact.
        bool newest_safe = true;
        for (std::ptrdiff_t c = 0; c < C; ++c)
            for (int v = 0; v < NV; ++v) {
                d4 u = entry(c, i, v);
                for (int l = 0; l < 4; ++l)
                    if (!(std::fabs(u[l]) + margin <= ceil)) newest_safe = false;
                st4(w.f(c, LAG) + 4 * v, splat(0.0));
                st4(w.u(c, LAG) + 4 * v, u);
            }
        bool above = false;
        double s = scale_to_fit(w, P.ceil, P.tgt, P.solve, above);
        if (s < 1.0) {
            for (int q = 0; q <= LAG; ++q) pw[q] *= s;
            const d4 sv = splat(s);
            for (std::ptrdiff_t c = 0; c < C; ++c)
                for (int j = 0; j <= LAG; ++j)
                    for (int v = 0; v < PH; v += 4)
                        st4(w.u(c, j) + v, ld4(w.u(c, j) + v) * sv);
        }
        // finalize sample i: its contribution moves from un to fin
        const double gi = pw[0];
        for (std::ptrdiff_t c = 0; c < C; ++c) {
            const d4 gx = splat(gi * xat(c)[i]);
            double* fc = w.f(c, 0);
            double* uc = w.u(c, 0);
            for (int j = 0; j <= LAG; ++j)
                for (int v = 0; v < NV; ++v) {
                    d4 d = hc(j * NV + v) * gx;
                    double* fj = fc + j * PH + 4 * v;
                    double* uj = uc + j * PH + 4 * v;
                    st4(fj, ld4(fj) + d);
                    st4(uj, ld4(uj) - d);
                }
        }
        out[i] = gi;
        ++w.o;  // point i is complete: the window slides
        quiet = (!above && s == 1.0 && newest_safe) ? quiet + 1 : 0;
        if (quiet > LAG) {
            // every point of the window at step i + 1 entered safe, none was scaled
            fast = true;
            dh = dt = 0;
            for (std::ptrdiff_t k = i + 1; k < i + LAG; ++k) dpush(k);
        }
    }
    gp_state = gp;
    if (fast) rebuild(n);
    for (int q = 0; q < LAG; ++q) {
        plan[q] = gall[n + q];
        for (std::ptrdiff_t c = 0; c < C; ++c)
            for (int p = 0; p < PH; ++p) {
                fin[(c * PH + p) * LAG + q] = w.f(c, q)[p];
                unf[(c * PH + p) * LAG + q] = w.u(c, q)[p];
            }
    }
}

template <class T>
void limiter_run(const Input<T>& in, const LimParams& P, double* tpq, double* req, double* gain,
                 double* plan, double* fin, double* unf, double* new_pend, double* gout, T* y,
                 std::ptrdiff_t drop, int threads) {
    const std::ptrdiff_t G = P.G, C = P.C, n = P.n, D = P.D, ramp = P.ramp;
    const int PH = P.L, LAG = P.LAG;
    const std::ptrdiff_t nb = n_blocks(n);
    const int th = stage_threads(G * C * n, threads);
    const std::ptrdiff_t rlen = ramp + n;
    // rr (G, ramp + n): the last ramp requirements, then those of the new frames
    std::vector<double> rr(static_cast<size_t>(G * rlen));
    for (std::ptrdiff_t g = 0; g < G; ++g)
        for (std::ptrdiff_t k = 0; k < ramp; ++k) rr[g * rlen + k] = req[g * ramp + k];
    // per-frame true peaks of the new frames (true-peak mode)
    std::vector<double> tpv(static_cast<size_t>(P.true_peak ? G * n : 0));
    if (P.true_peak) {
        parallel_for(G * nb, th, [&](std::ptrdiff_t item) {
            std::ptrdiff_t g = item / nb, t0 = (item % nb) * DBLOCK;
            std::ptrdiff_t t1 = std::min(n, t0 + DBLOCK);
            std::vector<double> buf(static_cast<size_t>(t1 - t0 + LAG));
            tp_frames(in, P, g, t0, t1, n - LAG, tpv.data() + g * n + t0, buf.data());
        });
        // peak of frame D - 11 + t of xx: max of the true peaks of the 12 frames whose
        // interpolator support contains it (concat(tpq, tp)[t : t + 12]) and of |xx|
        parallel_for(G * nb, th, [&](std::ptrdiff_t item) {
            std::ptrdiff_t g = item / nb, t0 = (item % nb) * DBLOCK;
            std::ptrdiff_t t1 = std::min(n, t0 + DBLOCK), len = t1 - t0;
            std::vector<double> full(static_cast<size_t>(len + LAG)), win(static_cast<size_t>(len)),
                peak(static_cast<size_t>(len)), buf(static_cast<size_t>(len));
            const double* tp = tpv.data() + g * n;
            for (std::ptrdiff_t m = 0; m < len + LAG; ++m)  // concat(tpq, tp)[t0 + m]
                full[m] = t0 + m < LAG ? tpq[g * LAG + t0 + m] : tp[t0 + m - LAG];
            window_max(full.data(), len, LAG, win.data());
            requirements(in, P, g, D - LAG + t0, len, win.data(), rr.data() + g * rlen + ramp + t0,
                         peak.data(), buf.data());
        });
        // new tpq: the last LAG entries of concat(tpq, tp)
        std::vector<double> nt(LAG);
        for (std::ptrdiff_t g = 0; g < G; ++g) {
            for (std::ptrdiff_t k = 0; k < LAG; ++k) {
                std::ptrdiff_t m = n + k;
                nt[k] = m < LAG ? tpq[g * LAG + m] : tpv[g * n + m - LAG];
            }
            for (std::ptrdiff_t k = 0; k < LAG; ++k) tpq[g * LAG + k] = nt[k];
        }
    } else {
        parallel_for(G * nb, th, [&](std::ptrdiff_t item) {
            std::ptrdiff_t g = item / nb, t0 = (item % nb) * DBLOCK;
            std::ptrdiff_t len = std::min(n, t0 + DBLOCK) - t0;
            std::vector<double> peak(static_cast<size_t>(len)), buf(static_cast<size_t>(len));
            requirements(in, P, g, D + t0, len, nullptr, rr.data() + g * rlen + ramp + t0,
                         peak.data(), buf.data());
        });
    }
    // the sequential planner (and the exact check) per group
    parallel_for(G, th, [&](std::ptrdiff_t g) {
        const double* r = rr.data() + g * rlen;
        if (P.true_peak)
            tp_group(in, P, g, r, tpv.data() + g * n, gain[g], plan + g * LAG, fin + g * C * PH * LAG,
                     unf + g * C * PH * LAG, gout + g * n);
        else
            sp_group(P, r, gain[g], gout + g * n);
        for (std::ptrdiff_t k = 0; k < ramp; ++k) req[g * ramp + k] = r[n + k];
        for (std::ptrdiff_t c = 0; c < C; ++c)
            for (std::ptrdiff_t k = 0; k < D; ++k)
                new_pend[(g * C + c) * D + k] = in.at(g * C + c, n + k);
    });
    // output: the delayed input times the gain, frames drop..n-1
    const std::ptrdiff_t ny = n - drop;
    parallel_for(G * nb, th, [&](std::ptrdiff_t item) {
        std::ptrdiff_t g = item / nb, t0 = std::max((item % nb) * DBLOCK, drop);
        std::ptrdiff_t t1 = std::min(n, (item % nb) * DBLOCK + DBLOCK);
        if (t1 <= t0) return;
        std::vector<double> buf(static_cast<size_t>(t1 - t0));
        const double* gr = gout + g * n;
        for (std::ptrdiff_t c = 0; c < C; ++c) {
            in.copy(g * C + c, t0, t1 - t0, buf.data());
            T* yr = y + (g * C + c) * ny;
            for (std::ptrdiff_t t = t0; t < t1; ++t)
                yr[t - drop] = static_cast<T>(buf[t - t0] * gr[t]);
        }
    });
}

void limiter(const py::array& x, const py::array& pend, const py::array& h, py::array& tpq,
             py::array& req, py::array& gain, py::array& plan, py::array& fin, py::array& unf,
             py::array& new_pend, py::array& gout, py::array& y, std::ptrdiff_t drop,
             bool true_peak, double ceil, double tgt, double a_rel, double snap, double solve,
             int threads) {
    if (x.ndim() != 3) throw std::invalid_argument("x: expected a 3-D array (G, C, n)");
    LimParams P{};
    P.G = x.shape(0);
    P.C = x.shape(1);
    P.n = x.shape(2);
    P.true_peak = true_peak;
    P.ceil = ceil;
    P.tgt = tgt;
    P.a_rel = a_rel;
    P.snap = snap;
    P.solve = solve;
    const double* pp = cdata_of<double>(pend, "pend", 3);
    P.h = cdata_of<double>(h, "h", 2);
    if (h.shape(0) < 4 || h.shape(0) % 4 != 0 || h.shape(0) > 64 || h.shape(1) < 2 ||
        h.shape(1) > 1024)
        throw std::invalid_argument("h: expected (L, T), L a multiple of 4 (4..64), 2 <= T <= 1024");
    P.L = static_cast<int>(h.shape(0));
    P.T = static_cast<int>(h.shape(1));
    P.LAG = P.T - 1;
    const int PH = P.L, LAG = P.LAG;
    const std::ptrdiff_t G = P.G, C = P.C, n = P.n, lag = true_peak ? LAG : 0;
    double* tpqp = data_of<double>(tpq, "tpq", 2);
    double* reqp = data_of<double>(req, "req", 2);
    double* gainp = data_of<double>(gain, "gain", 1);
    double* planp = data_of<double>(plan, "plan", 2);
    double* finp = data_of<double>(fin, "fin", 4);
    double* unfp = data_of<double>(unf, "unf", 4);
    double* npp = data_of<double>(new_pend, "new_pend", 3);
    double* goutp = data_of<double>(gout, "gout", 2);
    P.ramp = req.shape(1);
    P.D = pend.shape(2);
    if (pend.shape(0) != G || pend.shape(1) != C || P.D != P.ramp + 2 * lag)
        throw std::invalid_argument("pend: expected (G, C, lookahead (+ 2 (T - 1) in true-peak mode))");
    if (new_pend.shape(0) != G || new_pend.shape(1) != C || new_pend.shape(2) != P.D)
        throw std::invalid_argument("new_pend: expected the shape of pend");
    if (tpq.shape(0) != G || tpq.shape(1) != LAG)
        throw std::invalid_argument("tpq: expected (G, T - 1)");
    if (req.shape(0) != G || P.ramp < 1)
        throw std::invalid_argument("req: expected (G, ramp >= 1)");
    if (gain.shape(0) != G) throw std::invalid_argument("gain: expected (G,)");
    if (plan.shape(0) != G || plan.shape(1) != lag)
        throw std::invalid_argument("plan: expected (G, T - 1 or 0)");
    for (py::array* a : {&fin, &unf})
        if (a->shape(0) != G || a->shape(1) != C || a->shape(2) != PH || a->shape(3) != lag)
            throw std::invalid_argument("fin, unf: expected (G, C, L, T - 1 or 0)");
    if (gout.shape(0) != G || gout.shape(1) != n)
        throw std::invalid_argument("gout: expected (G, n)");
    if (drop < 0 || drop > n) throw std::invalid_argument("drop: expected 0 <= drop <= n");
    if (y.ndim() != 3 || y.shape(0) != G || y.shape(1) != C || y.shape(2) != n - drop)
        throw std::invalid_argument("y: expected (G, C, n - drop)");
    if (is_f32(x)) {
        Input<float> in{pp, cdata_of<float>(x, "x", 3), P.D, n};
        float* yp = data_of<float>(y, "y", 3);
        py::gil_scoped_release nogil;
        limiter_run(in, P, tpqp, reqp, gainp, planp, finp, unfp, npp, goutp, yp, drop, threads);
    } else {
        Input<double> in{pp, cdata_of<double>(x, "x", 3), P.D, n};
        double* yp = data_of<double>(y, "y", 3);
        py::gil_scoped_release nogil;
        limiter_run(in, P, tpqp, reqp, gainp, planp, finp, unfp, npp, goutp, yp, drop, threads);
    }
}

}  // namespace

void register_dynamics(py::module_& m) {
    m.def("dynamics_gain", &dynamics_gain, py::arg("det"), py::arg("rms"), py::arg("a_rms"),
          py::arg("kind"), py::arg("thr"), py::arg("ratio"), py::arg("knee"), py::arg("a_att"),
          py::arg("a_rel"), py::arg("hold_n"), py::arg("floor_db"), py::arg("makeup"),
          py::arg("ms"), py::arg("env"), py::arg("hold"), py::arg("out"), py::arg("threads") = 1,
          "Compressor (kind 0) / downward expander (kind 1) gain: det (G, C, n) float32/float64 "
          "-> out (G, n) float64 linear gain; ms (G, C), env (G,), hold (G,) float64 state, "
          "updated in place. GIL released.");
    m.def("limiter", &limiter, py::arg("x"), py::arg("pend"), py::arg("h"), py::arg("tpq"),
          py::arg("req"), py::arg("gain"), py::arg("plan"), py::arg("fin"), py::arg("unf"),
          py::arg("new_pend"), py::arg("gout"), py::arg("y"), py::arg("drop"),
          py::arg("true_peak"), py::arg("ceil"), py::arg("tgt"), py::arg("a_rel"),
          py::arg("snap"), py::arg("solve"), py::arg("threads") = 1,
          "Lookahead limiter on x (G, C, n) float32/float64 delayed by pend (G, C, D) float64: "
          "gout (G, n) float64 final gains, y (G, C, n - drop) in x's dtype = frames drop.. of "
          "concat(pend, x) times the gain, new_pend = the last D frames; tpq, req, gain, plan, "
          "fin, unf: float64 state, updated in place. GIL released.");
}

}  // namespace fx
