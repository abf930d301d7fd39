// The biquad cascade for inputs of fewer than LANES rows (mono, stereo, 3
// channels): the sections are skewed in time so that one row's sections fill the
// vector lanes (issue 15: a 4-row tile of stereo leaves half the lanes empty, and
// scalar rows are bound by the serial chain of each sample through the sections).
//
// Layout: R rows (1 or 2) and L = LANES / R sections per 4-wide vector; lane c of
// vector j holds row c % R and section j * L + c / R of the group. At step k,
// section s works on sample k - s: its input is what section s - 1 produced at the
// step before (a shift of the previous step's outputs by R lanes, the new samples
// of x shifted into the first lanes), so the sections of one step are independent
// and only each section's own recursion (o -> p -> o) bounds the loop. The first
// and last (sections - 1) steps freeze the state of the lanes that have no sample
// yet / any more (a bitwise select), so every call starts and ends with the
// pipeline empty and the state in z is the whole memory, as before.
//
// Bits: every section sees its samples in the same order with the same operations
// as group_row (SciPy's transposed direct form II, no FMA contraction; the input
// converted to float64, the output of the last section converted to the output
// type), so y and the final state equal the scalar kernel's bit for bit, which is
// tested against core.sosfilt(..., tiles=False) in tests/test_kernels.py.
//
// Cascades of up to 4 vectors' worth of sections (16 mono, 8 stereo) run straight
// from x to y; longer ones run block by block in balanced groups through a
// float64 buffer (like one_row).
#pragma once

#include "iir_kernels.hpp"

namespace fx {
namespace {

#if FX_HAVE_VEC
typedef long long v4l __attribute__((vector_size(32)));

// most vectors per group: the loop is latency-bound up to about this many
constexpr int SKEW_VMAX = 4;

// The AVX2 version of the kernels (picked at run time, FX_SKEW_AVX2) and the
// baseline one differ only in how shift_in is written: as a two-vector shuffle
// (one or two permutes with AVX2) or lane by lane (register moves with SSE2, where
// the generic shuffle of 4 doubles goes through memory: 5x slower).
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && defined(__linux__) && \
    !defined(FX_NO_CLONES)
#define FX_SKEW_AVX2 1
#define FX_TARGET_AVX2 __attribute__((target("avx2")))
#else
#define FX_SKEW_AVX2 0
#endif

// lanes 4-R..3 of a followed by lanes 0..3-R of b
template <int R, bool A>
inline __attribute__((always_inline)) v4d shift_in(v4d a, v4d b) {
    static_assert(R == 1 || R == 2, "R rows per vector: 1 or 2");
    if constexpr (!A) {
        if constexpr (R == 1)
            return v4d{a[3], b[0], b[1], b[2]};
        else
            return v4d{a[2], a[3], b[0], b[1]};
    }
#if defined(__clang__)
    if constexpr (R == 1)
        return __builtin_shufflevector(a, b, 3, 4, 5, 6);
    else
        return __builtin_shufflevector(a, b, 2, 3, 4, 5);
#else
    if constexpr (R == 1)
        return __builtin_shuffle(a, b, v4l{3, 4, 5, 6});
    else
        return __builtin_shuffle(a, b, v4l{2, 3, 4, 5});
#endif
}

// lanes of a where m is all ones, of b where it is zero (bit for bit)
inline v4d select4(v4l m, v4d a, v4d b) {
    return reinterpret_cast<v4d>((reinterpret_cast<v4l>(a) & m) |
                                 (reinterpret_cast<v4l>(b) & ~m));
}

#if defined(__GNUC__) || defined(__clang__)
#define FX_SKEW_INLINE inline __attribute__((always_inline))
#else
#define FX_SKEW_INLINE inline
#endif

// One step k of the pipeline (all V vectors). M (masked): lanes with no sample at
// this step (k - s outside [0, n)) keep their state. Every vector is handled whole
// (no lane indexing), so the compiler keeps the states in registers.
template <int R, int V, bool M, bool A, class In, class Out>
FX_SKEW_INLINE void skew_step(std::ptrdiff_t k, const In* const* u, Out* const* out,
                              std::ptrdiff_t n, int m, int co, const v4d (&b0)[V],
                              const v4d (&b1)[V], const v4d (&b2)[V], const v4d (&a1)[V],
                              const v4d (&a2)[V], const v4l (&sec)[V], v4d (&p)[V],
                              v4d (&q)[V], v4d (&o)[V]) {
    v4d xin;
    const bool in_range = !M || k < n;
    if constexpr (R == 1)
        xin = v4d{0.0, 0.0, 0.0, in_range ? static_cast<double>(u[0][k]) : 0.0};
    else
        xin = v4d{0.0, 0.0, in_range ? static_cast<double>(u[0][k]) : 0.0,
                  in_range ? static_cast<double>(u[1][k]) : 0.0};
    v4d w[V];
    w[0] = shift_in<R, A>(xin, o[0]);
    for (int j = 1; j < V; ++j) w[j] = shift_in<R, A>(o[j - 1], o[j]);
    for (int j = 0; j < V; ++j) {
        const v4d oj = b0[j] * w[j] + p[j];
        const v4d pj = b1[j] * w[j] - a1[j] * oj + q[j];
        const v4d qj = b2[j] * w[j] - a2[j] * oj;
        if constexpr (M) {  // lane active iff 0 <= k - s <= n - 1
            const v4l kv = {k, k, k, k};
            const v4l lo = kv - static_cast<long long>(n - 1);
            const v4l act = (sec[j] <= kv) & (sec[j] >= lo);
            p[j] = select4(act, pj, p[j]);
            q[j] = select4(act, qj, q[j]);
        } else {
            p[j] = pj;
            q[j] = qj;
        }
        o[j] = oj;
    }
    const std::ptrdiff_t t = k - (m - 1);
    if (!M || (t >= 0 && t < n)) {
        double last[LANES];
        store4(last, o[V - 1]);
        for (int r = 0; r < R; ++r) out[r][t] = static_cast<Out>(last[co + r]);
    }
}

// Sections g..g+m-1 (m <= L * V) of rows r0..r0+R-1: u[r][0:n] -> out[r][0:n]
// (u[r] may equal out[r]); z (S, rows, 2) holds the states.
template <int R, int V, bool A, class In, class Out>
FX_SKEW_INLINE void skew_body(const In* const* u, Out* const* out, std::ptrdiff_t n,
                              const double* sos, std::ptrdiff_t g, int m, double* z,
                              std::ptrdiff_t rows, std::ptrdiff_t r0) {
    constexpr int L = LANES / R;
    // lane-major staging: cf[j][i][c] coefficient i, ps/qs states, sc sections
    double cf[V][5][LANES] = {}, ps[V][LANES] = {}, qs[V][LANES] = {};
    long long sc[V][LANES];
    for (int j = 0; j < V; ++j) {
        for (int c = 0; c < LANES; ++c) {
            const int s = j * L + c / R;
            sc[j][c] = s;
            if (s >= m) continue;  // padding lanes: zeros, never read back
            const Coef k = coef_of(sos, g + s);
            const double* st = z + ((g + s) * rows + r0 + c % R) * 2;
            cf[j][0][c] = k.b0;
            cf[j][1][c] = k.b1;
            cf[j][2][c] = k.b2;
            cf[j][3][c] = k.a1;
            cf[j][4][c] = k.a2;
            ps[j][c] = st[0];
            qs[j][c] = st[1];
        }
    }
    v4d b0[V], b1[V], b2[V], a1[V], a2[V], p[V], q[V], o[V];
    v4l sec[V];
    for (int j = 0; j < V; ++j) {
        b0[j] = load4(cf[j][0]);
        b1[j] = load4(cf[j][1]);
        b2[j] = load4(cf[j][2]);
        a1[j] = load4(cf[j][3]);
        a2[j] = load4(cf[j][4]);
        p[j] = load4(ps[j]);
        q[j] = load4(qs[j]);
        o[j] = splat4(0.0);
        std::memcpy(&sec[j], sc[j], sizeof sec[j]);
    }
    // the last section: vector V - 1, lanes co .. co + R - 1
    const int co = ((m - 1) - (V - 1) * L) * R;
    if (n > 0) {
        const std::ptrdiff_t fill = m - 1;  // steps with some lane empty at each end
        const std::ptrdiff_t k1 = n > fill ? fill : n + fill;
        for (std::ptrdiff_t k = 0; k < k1; ++k)
            skew_step<R, V, true, A>(k, u, out, n, m, co, b0, b1, b2, a1, a2, sec, p, q, o);
        if (n > fill) {
            for (std::ptrdiff_t k = fill; k < n; ++k)
                skew_step<R, V, false, A>(k, u, out, n, m, co, b0, b1, b2, a1, a2, sec, p, q, o);
            for (std::ptrdiff_t k = n; k < n + fill; ++k)
                skew_step<R, V, true, A>(k, u, out, n, m, co, b0, b1, b2, a1, a2, sec, p, q, o);
        }
    }
    for (int j = 0; j < V; ++j) {
        store4(ps[j], p[j]);
        store4(qs[j], q[j]);
    }
    for (int j = 0; j < V; ++j) {
        for (int c = 0; c < LANES; ++c) {
            const int s = j * L + c / R;
            if (s >= m) continue;
            double* st = z + ((g + s) * rows + r0 + c % R) * 2;
            st[0] = ps[j][c];
            st[1] = qs[j][c];
        }
    }
}

template <int R, int V, class In, class Out>
void skew_group_base(const In* const* u, Out* const* out, std::ptrdiff_t n, const double* sos,
                     std::ptrdiff_t g, int m, double* z, std::ptrdiff_t rows, std::ptrdiff_t r0) {
    skew_body<R, V, false>(u, out, n, sos, g, m, z, rows, r0);
}

#if FX_SKEW_AVX2
template <int R, int V, class In, class Out>
FX_TARGET_AVX2 void skew_group_avx2(const In* const* u, Out* const* out, std::ptrdiff_t n,
                                    const double* sos, std::ptrdiff_t g, int m, double* z,
                                    std::ptrdiff_t rows, std::ptrdiff_t r0) {
    skew_body<R, V, true>(u, out, n, sos, g, m, z, rows, r0);
}

inline bool skew_have_avx2() {
    static const bool yes = __builtin_cpu_supports("avx2");
    return yes;
}
#else
inline bool skew_have_avx2() { return false; }
#endif

template <int R, int V, class In, class Out>
inline void skew_group(const In* const* u, Out* const* out, std::ptrdiff_t n, const double* sos,
                       std::ptrdiff_t g, int m, double* z, std::ptrdiff_t rows, std::ptrdiff_t r0) {
#if FX_SKEW_AVX2
    if (skew_have_avx2()) {
        skew_group_avx2<R, V>(u, out, n, sos, g, m, z, rows, r0);
        return;
    }
#endif
    skew_group_base<R, V>(u, out, n, sos, g, m, z, rows, r0);
}

template <int R, class In, class Out>
inline void skew_group_v(const In* const* u, Out* const* out, std::ptrdiff_t n,
                         const double* sos, std::ptrdiff_t g, int m, double* z,
                         std::ptrdiff_t rows, std::ptrdiff_t r0) {
    constexpr int L = LANES / R;
    switch ((m + L - 1) / L) {
        case 4: skew_group<R, 4>(u, out, n, sos, g, m, z, rows, r0); break;
        case 3: skew_group<R, 3>(u, out, n, sos, g, m, z, rows, r0); break;
        case 2: skew_group<R, 2>(u, out, n, sos, g, m, z, rows, r0); break;
        default: skew_group<R, 1>(u, out, n, sos, g, m, z, rows, r0); break;
    }
}

// The whole cascade (n_sec >= 1 sections) of rows r0..r0+R-1 of x -> y.
template <int R, class T>
void skew_rows(const T* x, T* y, std::ptrdiff_t n_t, const double* sos, std::ptrdiff_t n_sec,
               double* z, std::ptrdiff_t rows, std::ptrdiff_t r0) {
    constexpr int L = LANES / R;
    constexpr std::ptrdiff_t max_sec = L * SKEW_VMAX;
    const T* xr[R];
    T* yr[R];
    for (int r = 0; r < R; ++r) {
        xr[r] = x + (r0 + r) * n_t;
        yr[r] = y + (r0 + r) * n_t;
    }
    if (n_sec <= max_sec) {
        skew_group_v<R>(xr, yr, n_t, sos, 0, static_cast<int>(n_sec), z, rows, r0);
        return;
    }
    const std::ptrdiff_t n_groups = (n_sec + max_sec - 1) / max_sec;
    const std::ptrdiff_t nb = std::min(BLOCK, n_t);
    std::vector<double> buf(static_cast<size_t>(R * nb));
    double* br[R];
    for (int r = 0; r < R; ++r) br[r] = buf.data() + r * nb;
    for (std::ptrdiff_t t0 = 0; t0 < n_t; t0 += BLOCK) {
        const std::ptrdiff_t n = std::min(n_t - t0, BLOCK);
        const T* xb[R];
        T* yb[R];
        for (int r = 0; r < R; ++r) {
            xb[r] = xr[r] + t0;
            yb[r] = yr[r] + t0;
        }
        std::ptrdiff_t g = 0;
        for (std::ptrdiff_t k = 0; k < n_groups; ++k) {
            const int m = group_size(n_sec, g, n_groups, k);
            if (k == 0)
                skew_group_v<R>(xb, br, n, sos, g, m, z, rows, r0);
            else if (k == n_groups - 1)
                skew_group_v<R>(br, yb, n, sos, g, m, z, rows, r0);
            else
                skew_group_v<R>(br, br, n, sos, g, m, z, rows, r0);
            g += m;
        }
    }
}

// All rows (1 <= rows < LANES): pairs of rows with R = 2, a last odd row with R = 1;
// the items spread over up to `threads` threads (one for small inputs).
template <class T>
void skew_cascade(const T* x, T* y, std::ptrdiff_t rows, std::ptrdiff_t n_t, const double* sos,
                  std::ptrdiff_t n_sec, double* z, int threads) {
    const std::ptrdiff_t pairs = rows / 2;
    const std::ptrdiff_t items = pairs + rows % 2;
    const int th = rows * n_t < PAR_MIN_SAMPLES ? 1 : threads;
    parallel_for(items, th, [&](std::ptrdiff_t i) {
        if (i < pairs)
            skew_rows<2>(x, y, n_t, sos, n_sec, z, rows, 2 * i);
        else
            if (skew_have_avx2())
                skew_rows<1>(x, y, n_t, sos, n_sec, z, rows, 2 * pairs);
            else  // measured: the baseline (SSE2) mono schedule is no faster than a row
                one_row(x, y, n_t, sos, n_sec, z, rows, 2 * pairs);
    });
}
#endif

}  // namespace
}  // namespace fx
