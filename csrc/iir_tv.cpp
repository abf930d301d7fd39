// Time-varying biquad cascade (fxcli.dsp.iir.timevarying): one set of sections per
// sample, SciPy's transposed direct form II with the coefficients of sample t used
// for everything computed at sample t:
//     o = b0[t]*w + p;  p = b1[t]*w - a1[t]*o + q;  q = b2[t]*w - a2[t]*o
// (the operations and order of sosfilt's kernels, so constant coefficients give
// core.sosfilt's bits). Layout: x, y (rows, n) float32/float64; sos (rows, n, S, 6)
// float64 with a0 == 1; z (S, rows, 2) float64, initial state in, final state out.
// Rows are independent and spread over threads.
#include "iir_kernels.hpp"

namespace fx {
namespace {

template <class T>
void tv_row(const T* x, const double* sos, double* z, T* y, std::ptrdiff_t rows,
            std::ptrdiff_t n_t, std::ptrdiff_t n_sec, std::ptrdiff_t r) {
    std::vector<double> p(static_cast<size_t>(n_sec)), q(static_cast<size_t>(n_sec));
    for (std::ptrdiff_t s = 0; s < n_sec; ++s) {
        p[s] = z[(s * rows + r) * 2];
        q[s] = z[(s * rows + r) * 2 + 1];
    }
    const T* xr = x + r * n_t;
    T* yr = y + r * n_t;
    const double* sr = sos + r * n_t * n_sec * 6;
    for (std::ptrdiff_t t = 0; t < n_t; ++t) {
        double w = static_cast<double>(xr[t]);
        const double* ct = sr + t * n_sec * 6;
        for (std::ptrdiff_t s = 0; s < n_sec; ++s) {
            const double* c = ct + 6 * s;
            const double b0 = c[0], b1 = c[1], b2 = c[2], a1 = c[4], a2 = c[5];
            double o = b0 * w + p[s];
            p[s] = b1 * w - a1 * o + q[s];
            q[s] = b2 * w - a2 * o;
            w = o;
        }
        yr[t] = static_cast<T>(w);
    }
    for (std::ptrdiff_t s = 0; s < n_sec; ++s) {
        z[(s * rows + r) * 2] = p[s];
        z[(s * rows + r) * 2 + 1] = q[s];
    }
}

template <class T>
void tv_run(const py::array& x, const double* s, double* zp, py::array& y, std::ptrdiff_t n_sec,
            int threads) {
    const T* xp = cdata_of<T>(x, "x", 2);
    T* yp = data_of<T>(y, "y", 2);
    const std::ptrdiff_t rows = x.shape(0), n_t = x.shape(1);
    py::gil_scoped_release nogil;
    int th = rows * n_t < PAR_MIN_SAMPLES ? 1 : threads;
    parallel_for(rows, th,
                 [&](std::ptrdiff_t r) { tv_row(xp, s, zp, yp, rows, n_t, n_sec, r); });
}

void tvsosfilt(const py::array& x, const py::array& sos, py::array& z, py::array& y,
               int threads) {
    if (x.ndim() != 2) throw std::invalid_argument("x: expected a 2-D array");
    const std::ptrdiff_t rows = x.shape(0), n_t = x.shape(1);
    const double* s = cdata_of<double>(sos, "sos", 4);
    const std::ptrdiff_t n_sec = sos.shape(2);
    if (sos.shape(0) != rows || sos.shape(1) != n_t || sos.shape(3) != 6)
        throw std::invalid_argument("sos: expected shape (rows, n, S, 6)");
    double* zp = data_of<double>(z, "z", 3);
    if (z.shape(0) != n_sec || z.shape(1) != rows || z.shape(2) != 2)
        throw std::invalid_argument("z: expected shape (S, rows, 2)");
    if (y.ndim() != 2 || y.shape(0) != rows || y.shape(1) != n_t)
        throw std::invalid_argument("y: expected the shape of x");
    if (is_f32(x))
        tv_run<float>(x, s, zp, y, n_sec, threads);
    else
        tv_run<double>(x, s, zp, y, n_sec, threads);
}

}  // namespace

void register_iir_tv(py::module_& m) {
    m.def("tvsosfilt", &tvsosfilt, py::arg("x"), py::arg("sos"), py::arg("z"), py::arg("y"),
          py::arg("threads") = 1,
          "Time-varying biquad cascade: x (rows, n) float32/float64 -> y (same shape and "
          "dtype); sos (rows, n, S, 6) float64 with a0 == 1; z (S, rows, 2) float64 state, "
          "updated in place. GIL released.");
}

}  // namespace fx
