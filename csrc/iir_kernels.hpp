// The biquad-cascade building blocks shared by the forward (iir.cpp) and the
// checkpointing forward / adjoint (iir_adjoint.cpp): one copy of the fused section
// loops, so the autograd forward gives sosfilt's bits by construction.
//
// Per section the operations are SciPy's transposed direct form II, in SciPy's
// order (sosfilt's inner loop):
//     o = b0*w + p;  p = b1*w - a1*o + q;  q = b2*w - a2*o
//
// Everything here has internal linkage (an unnamed namespace): each including
// file gets its own copy, so the target_clones functions never meet across files.
#pragma once

#include "common.hpp"

#include <cstring>

namespace fx {
namespace {

// samples per block of the scratch buffers (and per checkpoint of the adjoint)
constexpr std::ptrdiff_t BLOCK = 2048;

struct Coef {
    double b0, b1, b2, a1, a2;
};

inline Coef coef_of(const double* sos, std::ptrdiff_t s) {
    const double* c = sos + 6 * s;
    return {c[0], c[1], c[2], c[4], c[5]};
}

// M sections (g..g+M-1) of one scalar row: u[0:n] -> v[0:n] (u may equal v).
// st: pointer to z[g, r, 0]; stride between sections' states is `sstride` doubles.
template <int M, class In, class Out>
inline void group_row(const In* u, Out* v, std::ptrdiff_t n, const double* sos, std::ptrdiff_t g,
                      double* st, std::ptrdiff_t sstride) {
    Coef c[M];
    double p[M], q[M];
    for (int j = 0; j < M; ++j) {
        c[j] = coef_of(sos, g + j);
        p[j] = st[j * sstride];
        q[j] = st[j * sstride + 1];
    }
    for (std::ptrdiff_t t = 0; t < n; ++t) {
        double w = static_cast<double>(u[t]);
        for (int j = 0; j < M; ++j) {
            double o = c[j].b0 * w + p[j];
            p[j] = c[j].b1 * w - c[j].a1 * o + q[j];
            q[j] = c[j].b2 * w - c[j].a2 * o;
            w = o;
        }
        v[t] = static_cast<Out>(w);
    }
    for (int j = 0; j < M; ++j) {
        st[j * sstride] = p[j];
        st[j * sstride + 1] = q[j];
    }
}

template <class In, class Out>
inline void group_row_m(int m, const In* u, Out* v, std::ptrdiff_t n, const double* sos,
                        std::ptrdiff_t g, double* st, std::ptrdiff_t sstride) {
    switch (m) {
        case 4: group_row<4>(u, v, n, sos, g, st, sstride); break;
        case 3: group_row<3>(u, v, n, sos, g, st, sstride); break;
        case 2: group_row<2>(u, v, n, sos, g, st, sstride); break;
        default: group_row<1>(u, v, n, sos, g, st, sstride); break;
    }
}

// balanced group size of group k (of n_groups) starting at section g
inline int group_size(std::ptrdiff_t n_sec, std::ptrdiff_t g, std::ptrdiff_t n_groups,
                      std::ptrdiff_t k) {
    return static_cast<int>((n_sec - g + n_groups - k - 1) / (n_groups - k));
}

#if FX_HAVE_VEC
// Vectors are loaded from and stored to plain double buffers with memcpy
// (unaligned moves): no over-aligned allocations, no aliasing questions.
inline v4d load4(const double* p) {
    v4d v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline void store4(double* p, v4d v) { std::memcpy(p, &v, sizeof v); }
inline v4d splat4(double x) { return v4d{x, x, x, x}; }

// M sections on a time-major tile buffer of LANES rows (buf[4t + c]), in place.
// st[4 (2j + i) + c]: state i of section g+j, lane c.
template <int M>
FX_CLONES void group_tile(double* buf, std::ptrdiff_t n, const double* sos, std::ptrdiff_t g,
                          double* st) {
    v4d b0[M], b1[M], b2[M], a1[M], a2[M], p[M], q[M];
    for (int j = 0; j < M; ++j) {
        Coef c = coef_of(sos, g + j);
        b0[j] = v4d{c.b0, c.b0, c.b0, c.b0};
        b1[j] = v4d{c.b1, c.b1, c.b1, c.b1};
        b2[j] = v4d{c.b2, c.b2, c.b2, c.b2};
        a1[j] = v4d{c.a1, c.a1, c.a1, c.a1};
        a2[j] = v4d{c.a2, c.a2, c.a2, c.a2};
        p[j] = load4(st + LANES * (2 * j));
        q[j] = load4(st + LANES * (2 * j + 1));
    }
    for (std::ptrdiff_t t = 0; t < n; ++t) {
        v4d w = load4(buf + LANES * t);
        for (int j = 0; j < M; ++j) {
            v4d o = b0[j] * w + p[j];
            p[j] = b1[j] * w - a1[j] * o + q[j];
            q[j] = b2[j] * w - a2[j] * o;
            w = o;
        }
        store4(buf + LANES * t, w);
    }
    for (int j = 0; j < M; ++j) {
        store4(st + LANES * (2 * j), p[j]);
        store4(st + LANES * (2 * j + 1), q[j]);
    }
}

// Tile transposes: rows r0..r0+3 of x (row stride `stride`), samples t0..t0+n-1 ->
// the time-major buffer buf[4t + c] as float64, and back. Blocks of 4 x 4 samples
// are converted and transposed in vector registers (the element-by-element loops
// cost about as much as the filter itself); the tail runs element by element. The
// conversions are exact (float -> double) or the usual rounding (double -> float),
// so the bits are those of static_cast.
template <class T>
inline __attribute__((always_inline)) v4d load_row4(const T* p) {
    if constexpr (sizeof(T) == sizeof(float)) {
        typedef float v4f __attribute__((vector_size(16)));
        v4f v;
        std::memcpy(&v, p, sizeof v);
        return __builtin_convertvector(v, v4d);
    } else {
        return load4(p);
    }
}

template <class T>
inline __attribute__((always_inline)) void store_row4(T* p, v4d v) {
    if constexpr (sizeof(T) == sizeof(float)) {
        typedef float v4f __attribute__((vector_size(16)));
        v4f f = __builtin_convertvector(v, v4f);
        std::memcpy(p, &f, sizeof f);
    } else {
        store4(p, v);
    }
}

// the 4 x 4 transpose of rows a, b, c, d (in place)
inline __attribute__((always_inline)) void transpose4(v4d& a, v4d& b, v4d& c, v4d& d) {
    typedef long long v4i __attribute__((vector_size(32)));
#if defined(__clang__)
    v4d t0 = __builtin_shufflevector(a, b, 0, 4, 2, 6), t1 = __builtin_shufflevector(a, b, 1, 5, 3, 7);
    v4d t2 = __builtin_shufflevector(c, d, 0, 4, 2, 6), t3 = __builtin_shufflevector(c, d, 1, 5, 3, 7);
    a = __builtin_shufflevector(t0, t2, 0, 1, 4, 5);
    b = __builtin_shufflevector(t1, t3, 0, 1, 4, 5);
    c = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
    d = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
#else
    v4d t0 = __builtin_shuffle(a, b, v4i{0, 4, 2, 6}), t1 = __builtin_shuffle(a, b, v4i{1, 5, 3, 7});
    v4d t2 = __builtin_shuffle(c, d, v4i{0, 4, 2, 6}), t3 = __builtin_shuffle(c, d, v4i{1, 5, 3, 7});
    a = __builtin_shuffle(t0, t2, v4i{0, 1, 4, 5});
    b = __builtin_shuffle(t1, t3, v4i{0, 1, 4, 5});
    c = __builtin_shuffle(t0, t2, v4i{2, 3, 6, 7});
    d = __builtin_shuffle(t1, t3, v4i{2, 3, 6, 7});
#endif
}

template <class T>
FX_CLONES void tile_in(const T* x, std::ptrdiff_t stride, double* buf, std::ptrdiff_t n) {
    std::ptrdiff_t t = 0;
    for (; t + 4 <= n; t += 4) {
        v4d a = load_row4(x + t), b = load_row4(x + stride + t);
        v4d c = load_row4(x + 2 * stride + t), d = load_row4(x + 3 * stride + t);
        transpose4(a, b, c, d);
        store4(buf + LANES * t, a);
        store4(buf + LANES * (t + 1), b);
        store4(buf + LANES * (t + 2), c);
        store4(buf + LANES * (t + 3), d);
    }
    for (; t < n; ++t)
        for (int c = 0; c < LANES; ++c) buf[LANES * t + c] = static_cast<double>(x[c * stride + t]);
}

template <class T>
FX_CLONES void tile_out(const double* buf, T* y, std::ptrdiff_t stride, std::ptrdiff_t n) {
    std::ptrdiff_t t = 0;
    for (; t + 4 <= n; t += 4) {
        v4d a = load4(buf + LANES * t), b = load4(buf + LANES * (t + 1));
        v4d c = load4(buf + LANES * (t + 2)), d = load4(buf + LANES * (t + 3));
        transpose4(a, b, c, d);
        store_row4(y + t, a);
        store_row4(y + stride + t, b);
        store_row4(y + 2 * stride + t, c);
        store_row4(y + 3 * stride + t, d);
    }
    for (; t < n; ++t)
        for (int c = 0; c < LANES; ++c) y[c * stride + t] = static_cast<T>(buf[LANES * t + c]);
}

inline void group_tile_m(int m, double* buf, std::ptrdiff_t n, const double* sos,
                         std::ptrdiff_t g, double* st) {
    switch (m) {
        case 4: group_tile<4>(buf, n, sos, g, st); break;
        case 3: group_tile<3>(buf, n, sos, g, st); break;
        case 2: group_tile<2>(buf, n, sos, g, st); break;
        default: group_tile<1>(buf, n, sos, g, st); break;
    }
}
#endif

// What a tile of 4 rows costs in single rows' time on one thread, for run_rows'
// choice between tiles and single rows on several threads. The adjoint's backward
// tile: about 2.2 (measured with the previous kernel; 2.5 on 4 rows x 480k, 3
// sections, 2026-12-05). The forward tile (the checkpointing forward): 0.73 since
// the vector transposes (3.3 ms for a tile vs 4.5 per scalar row), so tiles always
// win there (the old 2.2 sent 4 rows on 2 threads to scalar rows: 9.1 ms vs 3.3).
constexpr double TILE_COST = 2.2;
constexpr double FWD_TILE_COST = 1.0;
// below this many samples in all, threads cost more than they save
constexpr std::ptrdiff_t PAR_MIN_SAMPLES = 1 << 15;

// Row r of x -> y (x, y point at row 0; rows of n_t samples). With ck (the
// checkpointing forward of the adjoint) the state at the start of every BLOCK
// samples is stored, ck[(r * n_blocks + j) * 2 S + 2 s + i]; the arithmetic is the
// same either way (a cascade of up to 4 sections runs straight from x to y).
template <class T>
void one_row(const T* x, T* y, std::ptrdiff_t n_t, const double* sos, std::ptrdiff_t n_sec,
             double* z, std::ptrdiff_t rows, std::ptrdiff_t r, double* ck = nullptr,
             std::ptrdiff_t n_blocks = 0) {
    const std::ptrdiff_t sstride = 2 * rows;
    double* zr = z + 2 * r;
    const T* xr = x + r * n_t;
    T* yr = y + r * n_t;
    if (n_sec <= 4 && ck == nullptr) {
        group_row_m(static_cast<int>(n_sec), xr, yr, n_t, sos, 0, zr, sstride);
        return;
    }
    const std::ptrdiff_t n_groups = (n_sec + 3) / 4;
    std::vector<double> buf(n_sec <= 4 ? 0 : static_cast<size_t>(std::min(BLOCK, n_t)));
    std::ptrdiff_t j = 0;
    for (std::ptrdiff_t t0 = 0; t0 < n_t; t0 += BLOCK, ++j) {
        std::ptrdiff_t n = std::min(n_t - t0, BLOCK);
        if (ck != nullptr) {
            double* ckj = ck + (r * n_blocks + j) * n_sec * 2;
            for (std::ptrdiff_t s = 0; s < n_sec; ++s) {
                ckj[2 * s] = zr[s * sstride];
                ckj[2 * s + 1] = zr[s * sstride + 1];
            }
        }
        if (n_sec <= 4) {  // one fused group straight from x to y
            group_row_m(static_cast<int>(n_sec), xr + t0, yr + t0, n, sos, 0, zr, sstride);
            continue;
        }
        for (std::ptrdiff_t t = 0; t < n; ++t) buf[t] = static_cast<double>(xr[t0 + t]);
        std::ptrdiff_t g = 0;
        for (std::ptrdiff_t k = 0; k < n_groups; ++k) {
            int m = group_size(n_sec, g, n_groups, k);
            group_row_m(m, buf.data(), buf.data(), n, sos, g, zr + g * sstride, sstride);
            g += m;
        }
        for (std::ptrdiff_t t = 0; t < n; ++t) yr[t0 + t] = static_cast<T>(buf[t]);
    }
}

#if FX_HAVE_VEC
// Rows r0..r0+3 with the vector kernels (checkpoints in ck as for one_row).
template <class T>
void one_tile(const T* x, T* y, std::ptrdiff_t n_t, const double* sos, std::ptrdiff_t n_sec,
              double* z, std::ptrdiff_t rows, std::ptrdiff_t r0, double* ck = nullptr,
              std::ptrdiff_t n_blocks = 0) {
    const std::ptrdiff_t n_groups = (n_sec + 3) / 4;
    std::vector<double> buf(static_cast<size_t>(LANES * std::min(BLOCK, n_t)));
    std::vector<double> st(static_cast<size_t>(LANES * 2 * n_sec));
    for (std::ptrdiff_t s = 0; s < n_sec; ++s)
        for (int i = 0; i < 2; ++i)
            for (int c = 0; c < LANES; ++c)
                st[LANES * (2 * s + i) + c] = z[(s * rows + r0 + c) * 2 + i];
    std::ptrdiff_t j = 0;
    for (std::ptrdiff_t t0 = 0; t0 < n_t; t0 += BLOCK, ++j) {
        std::ptrdiff_t n = std::min(n_t - t0, BLOCK);
        if (ck != nullptr) {
            for (int c = 0; c < LANES; ++c) {
                double* ckj = ck + ((r0 + c) * n_blocks + j) * n_sec * 2;
                for (std::ptrdiff_t s = 0; s < n_sec; ++s)
                    for (int i = 0; i < 2; ++i) ckj[2 * s + i] = st[LANES * (2 * s + i) + c];
            }
        }
        tile_in(x + r0 * n_t + t0, n_t, buf.data(), n);
        std::ptrdiff_t g = 0;
        for (std::ptrdiff_t k = 0; k < n_groups; ++k) {
            int m = group_size(n_sec, g, n_groups, k);
            group_tile_m(m, buf.data(), n, sos, g, st.data() + LANES * 2 * g);
            g += m;
        }
        tile_out(buf.data(), y + r0 * n_t + t0, n_t, n);
    }
    for (std::ptrdiff_t s = 0; s < n_sec; ++s)
        for (int i = 0; i < 2; ++i)
            for (int c = 0; c < LANES; ++c)
                z[(s * rows + r0 + c) * 2 + i] = st[LANES * (2 * s + i) + c];
}
#endif

// The row policy of every cascade kernel: the first n_tiles work items are tiles
// of LANES rows (SIMD, when use_tiles and where they pay), the remaining rows one
// item each, spread over up to `threads` threads (one thread for small inputs).
// tile(r0) runs rows r0..r0+LANES-1, row(r) runs row r; items touch disjoint rows.
template <class TileFn, class RowFn>
void run_rows(std::ptrdiff_t rows, std::ptrdiff_t n_t, int threads, bool use_tiles,
              const TileFn& tile, const RowFn& row, double tile_cost = TILE_COST) {
    std::ptrdiff_t n_tiles = FX_HAVE_VEC && use_tiles ? rows / LANES : 0;
    int th = static_cast<int>(std::min<std::ptrdiff_t>(std::max(threads, 1), rows));
    if (rows * n_t < PAR_MIN_SAMPLES) th = 1;
    if (th > 1 && n_tiles) {
        std::ptrdiff_t rem = rows - LANES * n_tiles;
        double tiled = std::max(tile_cost, (tile_cost * n_tiles + rem) / th);
        if (tiled >= static_cast<double>((rows + th - 1) / th)) n_tiles = 0;
    }
    std::ptrdiff_t items = n_tiles + rows - LANES * n_tiles;
    parallel_for(items, th, [&](std::ptrdiff_t i) {
        if (i < n_tiles) {
            tile(LANES * i);
            return;
        }
        row(LANES * n_tiles + (i - n_tiles));
    });
}

}  // namespace
}  // namespace fx
