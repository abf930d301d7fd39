// Sums of squares over consecutive segments of each row: the loudness meter's
// 100 ms sub-block energies (BS.1770 mean squares before gating).
//
// out[c, j] = sum of y[c, t]^2 for t in [starts[j], starts[j+1]) (the last segment
// runs to the end of the row), summed in time order in float64. One definition for
// the numpy meter and the torch meter on the CPU, so both give the same bits.
#include "common.hpp"

namespace fx {
namespace {

void square_sums(const py::array& y, const py::array& starts, py::array& out) {
    const double* yp = cdata_of<double>(y, "y", 2);
    const std::int64_t* sp = cdata_of<std::int64_t>(starts, "starts", 1);
    double* op = data_of<double>(out, "out", 2);
    const std::ptrdiff_t rows = y.shape(0), n = y.shape(1), m = starts.shape(0);
    if (out.shape(0) != rows || out.shape(1) != m)
        throw std::invalid_argument("out: expected shape (rows, len(starts))");
    for (std::ptrdiff_t j = 0; j < m; ++j) {
        if (sp[j] < 0 || sp[j] > n || (j && sp[j] < sp[j - 1]))
            throw std::invalid_argument("starts: expected non-decreasing offsets in [0, n]");
    }
    py::gil_scoped_release nogil;
    for (std::ptrdiff_t c = 0; c < rows; ++c) {
        const double* row = yp + c * n;
        for (std::ptrdiff_t j = 0; j < m; ++j) {
            const std::ptrdiff_t hi = j + 1 < m ? sp[j + 1] : n;
            double acc = 0.0;
            for (std::ptrdiff_t t = sp[j]; t < hi; ++t) acc += row[t] * row[t];
            op[c * m + j] = acc;
        }
    }
}

}  // namespace

void register_loudness(py::module_& m) {
    m.def("square_sums", &square_sums, py::arg("y"), py::arg("starts"), py::arg("out"),
          "Per row, sums of squares over segments starting at `starts` (the last runs to "
          "the end), in time order, float64. GIL released.");
}

}  // namespace fx
