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
// Inputs of fewer than 4 rows put sections, skewed by one sample each, in the
// lanes instead (iir_skew.hpp); tiles=False keeps scalar rows (the reference).
#include "iir_kernels.hpp"
#include "iir_skew.hpp"

namespace fx {
namespace {

template <class T>
void cascade(const T* x, T* y, std::ptrdiff_t rows, std::ptrdiff_t n_t, const double* sos,
             std::ptrdiff_t n_sec, double* z, int threads, bool use_tiles) {
#if FX_HAVE_VEC
    if (use_tiles && rows < LANES && n_sec > 0) {  // mono/stereo: sections in the lanes
        skew_cascade(x, y, rows, n_t, sos, n_sec, z, threads);
        return;
    }
#endif
    run_rows(
        rows, n_t, threads, use_tiles,
        [&](std::ptrdiff_t r0) {
#if FX_HAVE_VEC
            one_tile(x, y, n_t, sos, n_sec, z, rows, r0);
#endif
        },
        [&](std::ptrdiff_t r) { one_row(x, y, n_t, sos, n_sec, z, rows, r); });
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
          "float64 with a0 == 1; z (S, rows, 2) float64 state, updated in place. GIL released. "
          "tiles=False: scalar rows only (no 4-row tiles, no skewed sections for < 4 rows); "
          "the same bits either way.");
}

}  // namespace fx
