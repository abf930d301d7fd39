// The CPU backward (adjoint) of the biquad cascade, for fxcli.dsp.iir.autograd.
//
// sosfilt_ckpt: the forward of csrc/iir.cpp (the same fused group_row /
// group_tile loops of iir_kernels.hpp, block by block with the state carried, so
// y and zf equal core.sosfilt's bit for bit) that also stores the cascade state
// at the start of every BLOCK samples in ck (rows, n_blocks, S, 2) float64.
//
// sos_backward: block by block from the end, the block's section signals are
// recomputed from ck (the forward's arithmetic, so they are the forward's signals)
// into a cache-resident buffer sig (S + 1 signals: the input and every section's
// output), then the adjoint recursion runs over it backwards in time, per
// section (w its input, o its output, (P, Q) the adjoint states, G the gradient of
// o from downstream):
//     gv = fma(-a2, Q, fma(-a1, P, G))          dL/do[t]
//     db0 += gv w; db1 += P w; db2 += Q w; da1 -= P o; da2 -= Q o   (fma sums)
//     G  = fma(b2, Q, fma(b1, P, b0 * gv))     dL/dw[t], the upstream section's G
//     Q = P; P = gv
// with the sections of a group (up to 4, as in the forward) fused in one loop and
// skewed by one sample each (section j works on sample t while section j+1 works
// on the one it hands its gradient to next), so the sections of one iteration are
// independent and the chain of one sample through the group no longer bounds the
// loop; the signal recompute is skewed the same way. Each section still sees its
// samples in the same order with the same operations: no value changes. One
// kernel template serves single rows (scalars) and tiles of 4 rows (4-wide
// vectors) with the same fused multiply-adds in the same order, so gradients do not
// depend on how rows are split into tiles and threads. The gradient sums of one
// block start at zero and are added to the row's sums block by block, and those to
// acc once per row. Rows go over threads with sosfilt's policy (run_rows).
//
// FMA: std::fma / __builtin_fma are exact (one rounding) whatever the CPU: the
// adjoint kernels carry a clone for CPUs with FMA instructions (chosen at load
// time, FX_CLONES_FMA); without them the same values come from libm's fma.
#include "iir_kernels.hpp"

#include <cmath>

namespace fx {
namespace {

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && defined(__linux__) && \
    !defined(FX_NO_CLONES)
#define FX_CLONES_FMA __attribute__((target_clones("fma", "default")))
#else
#define FX_CLONES_FMA
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FX_INLINE inline __attribute__((always_inline))
#define FX_UNROLL _Pragma("GCC unroll 4")
#else
#define FX_INLINE inline
#define FX_UNROLL
#endif

// ---------------------------------------------------------------- checkpointing forward

// ---------------------------------------------------------------- backward

// The backward kernels are written once for L lanes: L = 1 (one row, scalars) and
// L = LANES (a tile of 4 rows, 4-wide vectors). Buffers are lane-interleaved:
// element (index, lane c) at L * index + c, so for L = 1 they are plain arrays.
template <int L>
struct Lane;

template <>
struct Lane<1> {
    using V = double;
    static V load(const double* p) { return *p; }
    static void store(double* p, V v) { *p = v; }
    static V splat(double x) { return x; }
    static V fma(V a, V b, V c) { return std::fma(a, b, c); }
};

#if FX_HAVE_VEC
template <>
struct Lane<LANES> {
    using V = v4d;
    static V load(const double* p) { return load4(p); }
    static void store(double* p, V v) { store4(p, v); }
    static V splat(double x) { return splat4(x); }
    // lane by lane exact fused multiply-add (one vfmadd..pd in the FMA clone)
    static V fma(V a, V b, V c) {
        return V{__builtin_fma(a[0], b[0], c[0]), __builtin_fma(a[1], b[1], c[1]),
                 __builtin_fma(a[2], b[2], c[2]), __builtin_fma(a[3], b[3], c[3])};
    }
};
#endif

// Registers of store_group: coefficients, states, and out[j]: section j's output
// of the previous iteration (the next section's input).
template <int L, int M>
struct FwdRegs {
    using V = typename Lane<L>::V;
    V b0[M], b1[M], b2[M], a1[M], a2[M], p[M], q[M], out[M];
};

// Iteration i of store_group: section j runs sample t = i - j (sections skewed by
// one sample each, as in adjoint_iter). EDGE: the first and last M-1 iterations.
template <int L, int M, bool EDGE>
FX_INLINE void store_iter(FwdRegs<L, M>& R, std::ptrdiff_t i, std::ptrdiff_t n, double* sig,
                          std::ptrdiff_t cap, std::ptrdiff_t g) {
    using A = Lane<L>;
    using V = typename A::V;
    FX_UNROLL
    for (int j = M - 1; j >= 0; --j) {
        const std::ptrdiff_t t = i - j;
        if (EDGE && (t < 0 || t >= n)) continue;
        V w = j == 0 ? A::load(sig + L * (g * cap + t)) : R.out[j - 1];
        V o = R.b0[j] * w + R.p[j];
        R.p[j] = R.b1[j] * w - R.a1[j] * o + R.q[j];
        R.q[j] = R.b2[j] * w - R.a2[j] * o;
        A::store(sig + L * ((g + j + 1) * cap + t), o);
        R.out[j] = o;
    }
}

// Sections g..g+M-1: signal g of sig (index s * cap + t) -> signals g+1..g+M, every
// section's output stored; st (index 2 j + i: state i of section g+j) updated. The
// per-section arithmetic of group_row / group_tile, so the signals are the
// forward's bit for bit.
template <int L, int M>
FX_CLONES void store_group(double* sig, std::ptrdiff_t cap, std::ptrdiff_t n, const double* sos,
                           std::ptrdiff_t g, double* st) {
    using A = Lane<L>;
    FwdRegs<L, M> R;
    for (int j = 0; j < M; ++j) {
        Coef c = coef_of(sos, g + j);
        R.b0[j] = A::splat(c.b0);
        R.b1[j] = A::splat(c.b1);
        R.b2[j] = A::splat(c.b2);
        R.a1[j] = A::splat(c.a1);
        R.a2[j] = A::splat(c.a2);
        R.p[j] = A::load(st + L * (2 * j));
        R.q[j] = A::load(st + L * (2 * j + 1));
        R.out[j] = A::splat(0.0);
    }
    const std::ptrdiff_t n_it = n + M - 1;
    const std::ptrdiff_t head = std::min<std::ptrdiff_t>(M - 1, n_it);
    std::ptrdiff_t i = 0;
    for (; i < head; ++i) store_iter<L, M, true>(R, i, n, sig, cap, g);
    for (; i < n; ++i) store_iter<L, M, false>(R, i, n, sig, cap, g);
    for (i = std::max<std::ptrdiff_t>(n, head); i < n_it; ++i)
        store_iter<L, M, true>(R, i, n, sig, cap, g);
    for (int j = 0; j < M; ++j) {
        A::store(st + L * (2 * j), R.p[j]);
        A::store(st + L * (2 * j + 1), R.q[j]);
    }
}

// Registers of adjoint_group: coefficients (a1, a2 negated), adjoint states, the
// five gradient sums per section, and out[j]: the gradient of section j's input
// computed in the previous iteration (the next section's G).
template <int L, int M>
struct AdjRegs {
    using V = typename Lane<L>::V;
    V b0[M], b1[M], b2[M], na1[M], na2[M], p[M], q[M], s[5 * M], out[M];
};

// Iteration i of adjoint_group: section j runs sample t = n-1-i + (M-1-j), i.e. the
// sections are skewed by one sample each, so the gradient a section passes upstream
// is used one iteration later and the M sections of an iteration are independent
// (the chain of one sample through all sections no longer bounds the loop). EDGE:
// the first and last M-1 iterations, where some sections have no sample.
template <int L, int M, bool EDGE>
FX_INLINE void adjoint_iter(AdjRegs<L, M>& R, std::ptrdiff_t i, std::ptrdiff_t n,
                            const double* sig, std::ptrdiff_t cap, double* gb, std::ptrdiff_t g) {
    using A = Lane<L>;
    using V = typename A::V;
    FX_UNROLL
    for (int j = 0; j < M; ++j) {
        const std::ptrdiff_t t = n - 1 - i + (M - 1 - j);
        if (EDGE && (t < 0 || t >= n)) continue;
        V G = j == M - 1 ? A::load(gb + L * t) : R.out[j + 1];
        V w = A::load(sig + L * ((g + j) * cap + t));
        V o = A::load(sig + L * ((g + j + 1) * cap + t));
        V p = R.p[j], q = R.q[j];
        V gv = A::fma(R.na2[j], q, A::fma(R.na1[j], p, G));
        R.s[5 * j + 0] = A::fma(gv, w, R.s[5 * j + 0]);
        R.s[5 * j + 1] = A::fma(p, w, R.s[5 * j + 1]);
        R.s[5 * j + 2] = A::fma(q, w, R.s[5 * j + 2]);
        R.s[5 * j + 3] = A::fma(p, o, R.s[5 * j + 3]);
        R.s[5 * j + 4] = A::fma(q, o, R.s[5 * j + 4]);
        G = A::fma(R.b2[j], q, A::fma(R.b1[j], p, R.b0[j] * gv));
        R.q[j] = p;
        R.p[j] = gv;
        if (j == 0)
            A::store(gb + L * t, G);
        else
            R.out[j] = G;
    }
}

// Adjoint of sections g+M-1..g over t = n-1..0 (each section's samples in that
// order; sections skewed, see adjoint_iter): gb (index t, the gradient of the last
// section's output) -> the gradient of the first section's input, in place; lam
// (index 2 j + i) adjoint states; acc (index 5 j + k) the gradient sums of section
// g+j, to which this call's sums (started at zero) are added (k < 3) or from which
// they are subtracted (k = 3, 4).
template <int L, int M>
FX_CLONES_FMA void adjoint_group(const double* sig, std::ptrdiff_t cap, double* gb,
                                 std::ptrdiff_t n, const double* sos, std::ptrdiff_t g,
                                 double* lam, double* acc) {
    using A = Lane<L>;
    AdjRegs<L, M> R;
    for (int j = 0; j < M; ++j) {
        Coef c = coef_of(sos, g + j);
        R.b0[j] = A::splat(c.b0);
        R.b1[j] = A::splat(c.b1);
        R.b2[j] = A::splat(c.b2);
        R.na1[j] = A::splat(-c.a1);
        R.na2[j] = A::splat(-c.a2);
        R.p[j] = A::load(lam + L * (2 * j));
        R.q[j] = A::load(lam + L * (2 * j + 1));
        R.out[j] = A::splat(0.0);
    }
    for (int i = 0; i < 5 * M; ++i) R.s[i] = A::splat(0.0);
    // iterations 0..n+M-2; all sections have a sample in [M-1, n-1]
    const std::ptrdiff_t n_it = n + M - 1;
    const std::ptrdiff_t head = std::min<std::ptrdiff_t>(M - 1, n_it);
    std::ptrdiff_t i = 0;
    for (; i < head; ++i) adjoint_iter<L, M, true>(R, i, n, sig, cap, gb, g);
    for (; i < n; ++i) adjoint_iter<L, M, false>(R, i, n, sig, cap, gb, g);
    for (i = std::max<std::ptrdiff_t>(n, head); i < n_it; ++i)
        adjoint_iter<L, M, true>(R, i, n, sig, cap, gb, g);
    for (int j = 0; j < M; ++j) {
        A::store(lam + L * (2 * j), R.p[j]);
        A::store(lam + L * (2 * j + 1), R.q[j]);
    }
    for (int k = 0; k < 5 * M; ++k) {
        double* a = acc + L * k;
        A::store(a, k % 5 >= 3 ? A::load(a) - R.s[k] : A::load(a) + R.s[k]);
    }
}

template <int L>
void store_group_m(int m, double* sig, std::ptrdiff_t cap, std::ptrdiff_t n, const double* sos,
                   std::ptrdiff_t g, double* st) {
    switch (m) {
        case 4: store_group<L, 4>(sig, cap, n, sos, g, st); break;
        case 3: store_group<L, 3>(sig, cap, n, sos, g, st); break;
        case 2: store_group<L, 2>(sig, cap, n, sos, g, st); break;
        default: store_group<L, 1>(sig, cap, n, sos, g, st); break;
    }
}

template <int L>
void adjoint_group_m(int m, const double* sig, std::ptrdiff_t cap, double* gb, std::ptrdiff_t n,
                     const double* sos, std::ptrdiff_t g, double* lam, double* acc) {
    switch (m) {
        case 4: adjoint_group<L, 4>(sig, cap, gb, n, sos, g, lam, acc); break;
        case 3: adjoint_group<L, 3>(sig, cap, gb, n, sos, g, lam, acc); break;
        case 2: adjoint_group<L, 2>(sig, cap, gb, n, sos, g, lam, acc); break;
        default: adjoint_group<L, 1>(sig, cap, gb, n, sos, g, lam, acc); break;
    }
}

// Backward of rows r0..r0+L-1: block by block from the end, the block's section
// signals recomputed from ck, then the adjoint. x, gy -> gx (rows, n_t); ck (rows,
// n_blocks, S, 2); lam (rows, S, 2) in: grad of zf, out: grad of zi; acc (rows, S, 5)
// += the row's coefficient sums (summed over its blocks first).
template <int L, class T>
void bwd_rows(const T* x, const T* gy, T* gx, std::ptrdiff_t n_t, const double* sos,
              std::ptrdiff_t n_sec, const double* ck, std::ptrdiff_t n_blocks, double* lam,
              double* acc, std::ptrdiff_t r0) {
    const std::ptrdiff_t cap = std::min(BLOCK, n_t);
    const std::ptrdiff_t n_groups = (n_sec + 3) / 4;
    std::vector<std::ptrdiff_t> gs(static_cast<size_t>(n_groups));
    std::vector<int> ms(static_cast<size_t>(n_groups));
    for (std::ptrdiff_t k = 0, g = 0; k < n_groups; ++k) {
        ms[k] = group_size(n_sec, g, n_groups, k);
        gs[k] = g;
        g += ms[k];
    }
    std::vector<double> sig(static_cast<size_t>((n_sec + 1) * cap * L));
    std::vector<double> gb(static_cast<size_t>(cap * L));
    std::vector<double> st(static_cast<size_t>(2 * n_sec * L));
    std::vector<double> lm(static_cast<size_t>(2 * n_sec * L));
    std::vector<double> ac(static_cast<size_t>(5 * n_sec * L), 0.0);
    for (std::ptrdiff_t s = 0; s < n_sec; ++s)
        for (int i = 0; i < 2; ++i)
            for (int c = 0; c < L; ++c)
                lm[L * (2 * s + i) + c] = lam[((r0 + c) * n_sec + s) * 2 + i];
    for (std::ptrdiff_t j = n_blocks - 1; j >= 0; --j) {
        const std::ptrdiff_t t0 = j * BLOCK;
        const std::ptrdiff_t n = std::min(BLOCK, n_t - t0);
        for (int c = 0; c < L; ++c) {
            const double* ckj = ck + ((r0 + c) * n_blocks + j) * n_sec * 2;
            for (std::ptrdiff_t s = 0; s < n_sec; ++s)
                for (int i = 0; i < 2; ++i) st[L * (2 * s + i) + c] = ckj[2 * s + i];
        }
        for (int c = 0; c < L; ++c) {
            const T* xr = x + (r0 + c) * n_t + t0;
            const T* gr = gy + (r0 + c) * n_t + t0;
            for (std::ptrdiff_t t = 0; t < n; ++t) {
                sig[L * t + c] = static_cast<double>(xr[t]);
                gb[L * t + c] = static_cast<double>(gr[t]);
            }
        }
        for (std::ptrdiff_t k = 0; k < n_groups; ++k)
            store_group_m<L>(ms[k], sig.data(), cap, n, sos, gs[k], st.data() + 2 * gs[k] * L);
        for (std::ptrdiff_t k = n_groups - 1; k >= 0; --k)
            adjoint_group_m<L>(ms[k], sig.data(), cap, gb.data(), n, sos, gs[k],
                               lm.data() + 2 * gs[k] * L, ac.data() + 5 * gs[k] * L);
        for (int c = 0; c < L; ++c) {
            T* gr = gx + (r0 + c) * n_t + t0;
            for (std::ptrdiff_t t = 0; t < n; ++t) gr[t] = static_cast<T>(gb[L * t + c]);
        }
    }
    for (std::ptrdiff_t s = 0; s < n_sec; ++s) {
        for (int i = 0; i < 2; ++i)
            for (int c = 0; c < L; ++c)
                lam[((r0 + c) * n_sec + s) * 2 + i] = lm[L * (2 * s + i) + c];
        for (int k = 0; k < 5; ++k)
            for (int c = 0; c < L; ++c)
                acc[((r0 + c) * n_sec + s) * 5 + k] += ac[L * (5 * s + k) + c];
    }
}

// ---------------------------------------------------------------- bindings

struct Shape {
    std::ptrdiff_t rows, n_t, n_sec, n_blocks;
};

Shape check_common(const py::array& x, const py::array& sos, const py::array& ck) {
    if (x.ndim() != 2) throw std::invalid_argument("x: expected a 2-D array");
    if (sos.ndim() != 2 || sos.shape(1) != 6)
        throw std::invalid_argument("sos: expected shape (S, 6)");
    Shape sh{x.shape(0), x.shape(1), sos.shape(0), (x.shape(1) + BLOCK - 1) / BLOCK};
    if (ck.ndim() != 4 || ck.shape(0) != sh.rows || ck.shape(1) != sh.n_blocks ||
        ck.shape(2) != sh.n_sec || ck.shape(3) != 2)
        throw std::invalid_argument("ck: expected shape (rows, ceil(n / " +
                                    std::to_string(BLOCK) + "), S, 2)");
    return sh;
}

void check_like(const py::array& a, const py::array& x, const char* name) {
    if (a.ndim() != 2 || a.shape(0) != x.shape(0) || a.shape(1) != x.shape(1))
        throw std::invalid_argument(std::string(name) + ": expected the shape of x");
}

template <class T>
void ckpt_run(const py::array& x, py::array& y, const double* s, double* zp, double* ckp,
              const Shape& sh, int threads, bool tiles) {
    const T* xp = cdata_of<T>(x, "x", 2);
    T* yp = data_of<T>(y, "y", 2);
    py::gil_scoped_release nogil;
    if (sh.rows == 0 || sh.n_t == 0) return;
    run_rows(
        sh.rows, sh.n_t, threads, tiles,
        [&](std::ptrdiff_t r0) {
#if FX_HAVE_VEC
            one_tile(xp, yp, sh.n_t, s, sh.n_sec, zp, sh.rows, r0, ckp, sh.n_blocks);
#endif
        },
        [&](std::ptrdiff_t r) {
            one_row(xp, yp, sh.n_t, s, sh.n_sec, zp, sh.rows, r, ckp, sh.n_blocks);
        },
        FWD_TILE_COST);
}

void sosfilt_ckpt(const py::array& x, py::array& y, const py::array& sos, py::array& z,
                  py::array& ck, int threads, bool tiles) {
    const double* s = cdata_of<double>(sos, "sos", 2);
    Shape sh = check_common(x, sos, ck);
    double* zp = data_of<double>(z, "z", 3);
    double* ckp = data_of<double>(ck, "ck", 4);
    check_like(y, x, "y");
    if (z.shape(0) != sh.n_sec || z.shape(1) != sh.rows || z.shape(2) != 2)
        throw std::invalid_argument("z: expected shape (S, rows, 2)");
    if (is_f32(x))
        ckpt_run<float>(x, y, s, zp, ckp, sh, threads, tiles);
    else
        ckpt_run<double>(x, y, s, zp, ckp, sh, threads, tiles);
}

template <class T>
void bwd_run(const py::array& x, const py::array& gy, py::array& gx, const double* s,
             const double* ckp, double* lp, double* ap, const Shape& sh, int threads,
             bool tiles) {
    const T* xp = cdata_of<T>(x, "x", 2);
    const T* gyp = cdata_of<T>(gy, "gy", 2);
    T* gxp = data_of<T>(gx, "gx", 2);
    py::gil_scoped_release nogil;
    if (sh.rows == 0 || sh.n_t == 0) return;
    run_rows(
        sh.rows, sh.n_t, threads, tiles,
        [&](std::ptrdiff_t r0) {
#if FX_HAVE_VEC
            bwd_rows<LANES>(xp, gyp, gxp, sh.n_t, s, sh.n_sec, ckp, sh.n_blocks, lp, ap, r0);
#endif
        },
        [&](std::ptrdiff_t r) {
            bwd_rows<1>(xp, gyp, gxp, sh.n_t, s, sh.n_sec, ckp, sh.n_blocks, lp, ap, r);
        });
}

void sos_backward(const py::array& x, const py::array& gy, py::array& gx, const py::array& sos,
                  const py::array& ck, py::array& lam, py::array& acc, int threads, bool tiles) {
    const double* s = cdata_of<double>(sos, "sos", 2);
    Shape sh = check_common(x, sos, ck);
    const double* ckp = cdata_of<double>(ck, "ck", 4);
    double* lp = data_of<double>(lam, "lam", 3);
    double* ap = data_of<double>(acc, "acc", 3);
    check_like(gy, x, "gy");
    check_like(gx, x, "gx");
    if (lam.shape(0) != sh.rows || lam.shape(1) != sh.n_sec || lam.shape(2) != 2)
        throw std::invalid_argument("lam: expected shape (rows, S, 2)");
    if (acc.shape(0) != sh.rows || acc.shape(1) != sh.n_sec || acc.shape(2) != 5)
        throw std::invalid_argument("acc: expected shape (rows, S, 5)");
    if (is_f32(x))
        bwd_run<float>(x, gy, gx, s, ckp, lp, ap, sh, threads, tiles);
    else
        bwd_run<double>(x, gy, gx, s, ckp, lp, ap, sh, threads, tiles);
}

}  // namespace

void register_iir_adjoint(py::module_& m) {
    m.attr("IIR_BLOCK") = static_cast<long>(BLOCK);
    m.def("sosfilt_ckpt", &sosfilt_ckpt, py::arg("x"), py::arg("y"), py::arg("sos"),
          py::arg("z"), py::arg("ck"), py::arg("threads") = 1, py::arg("tiles") = true,
          "sosfilt (same y and z bits) that also stores the state at the start of every "
          "IIR_BLOCK samples: ck (rows, ceil(n / IIR_BLOCK), S, 2) float64. GIL released.");
    m.def("sos_backward", &sos_backward, py::arg("x"), py::arg("gy"), py::arg("gx"),
          py::arg("sos"), py::arg("ck"), py::arg("lam"), py::arg("acc"), py::arg("threads") = 1,
          py::arg("tiles") = true,
          "Adjoint of sosfilt: x, gy (rows, n) -> gx (x's dtype); ck from sosfilt_ckpt; lam "
          "(rows, S, 2) float64 in: grad of zf, out: grad of zi; acc (rows, S, 5) float64 += "
          "the coefficient gradients [b0, b1, b2, a1, a2] per row. GIL released.");
}

}  // namespace fx
