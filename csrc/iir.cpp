// The biquad cascade (second-order sections), fused: for each sample the
// sections of a group run with their coefficients and states in registers.
//
// Per section the operations are SciPy's transposed direct form II, in SciPy's
// order (sosfilt's inner loop):
//     o = b0*w + p;  p = b1*w - a1*o + q;  q = b2*w - a2*o
// so float64 results equal scipy.signal.sosfilt bit for bit on x86-64, and a
// chunked run equals one run bit for bit (the state is the whole memory).
//
// Layout: x, y (rows, n) float32 or float64, C order; sos (S, 6) float64 with
// a0 == 1; z (S, rows, 2) float64, read as the initial state and overwritten
// with the final one. Cascades of up to 4 sections run straight from x to y;
// longer ones go block by block through a float64 scratch buffer that stays in
// L1 and run in balanced groups of up to 4 (5 -> 3+2, 9 -> 3+3+3).
// Groups of 4 rows ("tiles") are transposed to a time-major buffer and filtered
// with 4-wide vectors: four channels for about the cost of one.
#include "common.hpp"

#include <cstring>

namespace fx {
namespace {

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

template <class T>
void one_row(const T* x, T* y, std::ptrdiff_t n_t, const double* sos, std::ptrdiff_t n_sec,
             double* z, std::ptrdiff_t rows, std::ptrdiff_t r) {
    const std::ptrdiff_t sstride = 2 * rows;
    double* zr = z + 2 * r;
    if (n_sec <= 4) {
        group_row_m(static_cast<int>(n_sec), x, y, n_t, sos, 0, zr, sstride);
        return;
    }
    const std::ptrdiff_t n_groups = (n_sec + 3) / 4;
    std::vector<double> buf(static_cast<size_t>(std::min(BLOCK, n_t)));
    for (std::ptrdiff_t t0 = 0; t0 < n_t; t0 += BLOCK) {
        std::ptrdiff_t n = std::min(n_t - t0, BLOCK);
        for (std::ptrdiff_t t = 0; t < n; ++t) buf[t] = static_cast<double>(x[t0 + t]);
        std::ptrdiff_t g = 0;
        for (std::ptrdiff_t k = 0; k < n_groups; ++k) {
            int m = group_size(n_sec, g, n_groups, k);
            group_row_m(m, buf.data(), buf.data(), n, sos, g, zr + g * sstride, sstride);
            g += m;
        }
        for (std::ptrdiff_t t = 0; t < n; ++t) y[t0 + t] = static_cast<T>(buf[t]);
    }
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

inline void group_tile_m(int m, double* buf, std::ptrdiff_t n, const double* sos,
                         std::ptrdiff_t g, double* st) {
    switch (m) {
        case 4: group_tile<4>(buf, n, sos, g, st); break;
        case 3: group_tile<3>(buf, n, sos, g, st); break;
        case 2: group_tile<2>(buf, n, sos, g, st); break;
        default: group_tile<1>(buf, n, sos, g, st); break;
    }
}

// rows r0..r0+3 with the vector kernels
template <class T>
void one_tile(const T* x, T* y, std::ptrdiff_t n_t, const double* sos, std::ptrdiff_t n_sec,
              double* z, std::ptrdiff_t rows, std::ptrdiff_t r0) {
    const std::ptrdiff_t n_groups = (n_sec + 3) / 4;
    std::vector<double> buf(static_cast<size_t>(LANES * std::min(BLOCK, n_t)));
    std::vector<double> st(static_cast<size_t>(LANES * 2 * n_sec));
    for (std::ptrdiff_t s = 0; s < n_sec; ++s)
        for (int i = 0; i < 2; ++i)
            for (int c = 0; c < LANES; ++c)
                st[LANES * (2 * s + i) + c] = z[(s * rows + r0 + c) * 2 + i];
    for (std::ptrdiff_t t0 = 0; t0 < n_t; t0 += BLOCK) {
        std::ptrdiff_t n = std::min(n_t - t0, BLOCK);
        for (int c = 0; c < LANES; ++c) {
            const T* xr = x + (r0 + c) * n_t + t0;
            for (std::ptrdiff_t t = 0; t < n; ++t) buf[LANES * t + c] = static_cast<double>(xr[t]);
        }
        std::ptrdiff_t g = 0;
        for (std::ptrdiff_t k = 0; k < n_groups; ++k) {
            int m = group_size(n_sec, g, n_groups, k);
            group_tile_m(m, buf.data(), n, sos, g, st.data() + LANES * 2 * g);
            g += m;
        }
        for (int c = 0; c < LANES; ++c) {
            T* yr = y + (r0 + c) * n_t + t0;
            for (std::ptrdiff_t t = 0; t < n; ++t) yr[t] = static_cast<T>(buf[LANES * t + c]);
        }
    }
    for (std::ptrdiff_t s = 0; s < n_sec; ++s)
        for (int i = 0; i < 2; ++i)
            for (int c = 0; c < LANES; ++c)
                z[(s * rows + r0 + c) * 2 + i] = st[LANES * (2 * s + i) + c];
}
#endif

// A tile of 4 rows takes about 2.2 single rows' time on one thread (measured
// with the previous kernel; the same shape holds here): with several threads and
// few rows, single rows on every thread can finish first.
constexpr double TILE_COST = 2.2;
// below this many samples in all, threads cost more than they save
constexpr std::ptrdiff_t PAR_MIN_SAMPLES = 1 << 15;

template <class T>
void cascade(const T* x, T* y, std::ptrdiff_t rows, std::ptrdiff_t n_t, const double* sos,
             std::ptrdiff_t n_sec, double* z, int threads, bool use_tiles) {
    std::ptrdiff_t n_tiles = FX_HAVE_VEC && use_tiles ? rows / LANES : 0;
    int th = static_cast<int>(std::min<std::ptrdiff_t>(std::max(threads, 1), rows));
    if (rows * n_t < PAR_MIN_SAMPLES) th = 1;
    if (th > 1 && n_tiles) {
        std::ptrdiff_t rem = rows - LANES * n_tiles;
        double tiled = std::max(TILE_COST, (TILE_COST * n_tiles + rem) / th);
        if (tiled >= static_cast<double>((rows + th - 1) / th)) n_tiles = 0;
    }
    std::ptrdiff_t items = n_tiles + rows - LANES * n_tiles;
    parallel_for(items, th, [&](std::ptrdiff_t i) {
#if FX_HAVE_VEC
        if (i < n_tiles) {
            one_tile(x, y, n_t, sos, n_sec, z, rows, LANES * i);
            return;
        }
#endif
        std::ptrdiff_t r = LANES * n_tiles + (i - n_tiles);
        one_row(x + r * n_t, y + r * n_t, n_t, sos, n_sec, z, rows, r);
    });
}

void sosfilt(const py::array& x, py::array& y, const py::array& sos, py::array& z, int threads,
             bool tiles) {
    const double* s = cdata_of<double>(sos, "sos", 2);
    if (sos.shape(1) != 6) throw std::invalid_argument("sos: expected shape (S, 6)");
    double* zp = data_of<double>(z, "z", 3);
    std::ptrdiff_t n_sec = sos.shape(0);
    if (x.ndim() != 2) throw std::invalid_argument("x: expected a 2-D array");
    std::ptrdiff_t rows = x.shape(0), n_t = x.shape(1);
    if (y.ndim() != 2 || y.shape(0) != rows || y.shape(1) != n_t)
        throw std::invalid_argument("y: expected the shape of x");
    if (z.shape(0) != n_sec || z.shape(1) != rows || z.shape(2) != 2)
        throw std::invalid_argument("z: expected shape (S, rows, 2)");
    if (is_f32(x)) {
        const float* xp = cdata_of<float>(x, "x", 2);
        float* yp = data_of<float>(y, "y", 2);
        py::gil_scoped_release nogil;
        cascade(xp, yp, rows, n_t, s, n_sec, zp, threads, tiles);
    } else {
        const double* xp = cdata_of<double>(x, "x", 2);
        double* yp = data_of<double>(y, "y", 2);
        py::gil_scoped_release nogil;
        cascade(xp, yp, rows, n_t, s, n_sec, zp, threads, tiles);
    }
}

}  // namespace

void register_iir(py::module_& m) {
    m.def("sosfilt", &sosfilt, py::arg("x"), py::arg("y"), py::arg("sos"), py::arg("z"),
          py::arg("threads") = 1, py::arg("tiles") = true,
          "Biquad cascade: x (rows, n) float32/float64 -> y (same shape and dtype); sos (S, 6) "
          "float64 with a0 == 1; z (S, rows, 2) float64 state, updated in place. GIL released.");
}

}  // namespace fx
