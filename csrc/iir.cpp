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
// with 4-wide vectors: four channels for about the cost of one. The section loops
// and the row/thread policy are in iir_kernels.hpp (shared with the adjoint).
#include "iir_kernels.hpp"

namespace fx {
namespace {

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

template <class T>
void cascade(const T* x, T* y, std::ptrdiff_t rows, std::ptrdiff_t n_t, const double* sos,
             std::ptrdiff_t n_sec, double* z, int threads, bool use_tiles) {
    run_rows(
        rows, n_t, threads, use_tiles,
        [&](std::ptrdiff_t r0) {
#if FX_HAVE_VEC
            one_tile(x, y, n_t, sos, n_sec, z, rows, r0);
#endif
        },
        [&](std::ptrdiff_t r) { one_row(x + r * n_t, y + r * n_t, n_t, sos, n_sec, z, rows, r); });
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
