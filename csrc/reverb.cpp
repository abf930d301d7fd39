// Freeverb (JUCE's juce::Reverb topology): per row 8 parallel lowpass-feedback
// combs summed in order, then 4 series allpasses, float64 throughout.
//
// Per sample x, with damp1 = 1 - damp, in this order (the numba kernel it
// replaces, operation for operation, so results are equal bit for bit):
//     comb j:    o = buf[p];  last = o*damp1 + last*damp;  buf[p] = x + last*feedback;
//                out += o     (out starts at 0.0; j = 0 .. 7)
//     allpass j: b = buf[p];  buf[p] = out + b*0.5;  out = b - out
// Positions advance by one and wrap at each line's length.
//
// Rows are independent and run on up to `threads` threads. Positions, lengths
// and lowpass states live in locals while a row runs; buffers, positions and
// states are updated in place (the caller passes copies of its state).
#include "common.hpp"

#include <initializer_list>

namespace fx {
namespace {

constexpr int MAX_LINES = 16;

void one_row(const double* x, double* wet, std::ptrdiff_t n, double* cbuf, const int64_t* clen,
             int64_t* cpos, double* clast, std::ptrdiff_t n_comb, std::ptrdiff_t c_stride,
             double* abuf, const int64_t* alen, int64_t* apos, std::ptrdiff_t n_ap,
             std::ptrdiff_t a_stride, double feedback, double damp) {
    const double damp1 = 1.0 - damp;
    double* cb[MAX_LINES];
    double* ab[MAX_LINES];
    std::ptrdiff_t cp[MAX_LINES], cl[MAX_LINES], ap[MAX_LINES], al[MAX_LINES];
    double last[MAX_LINES];
    for (std::ptrdiff_t j = 0; j < n_comb; ++j) {
        cb[j] = cbuf + j * c_stride;
        cp[j] = cpos[j];
        cl[j] = clen[j];
        last[j] = clast[j];
    }
    for (std::ptrdiff_t j = 0; j < n_ap; ++j) {
        ab[j] = abuf + j * a_stride;
        ap[j] = apos[j];
        al[j] = alen[j];
    }
    for (std::ptrdiff_t i = 0; i < n; ++i) {
        const double xi = x[i];
        double out = 0.0;
        for (std::ptrdiff_t j = 0; j < n_comb; ++j) {
            std::ptrdiff_t p = cp[j];
            double o = cb[j][p];
            double l = o * damp1 + last[j] * damp;
            last[j] = l;
            cb[j][p] = xi + l * feedback;
            ++p;
            cp[j] = p >= cl[j] ? 0 : p;
            out += o;
        }
        for (std::ptrdiff_t j = 0; j < n_ap; ++j) {
            std::ptrdiff_t p = ap[j];
            double b = ab[j][p];
            ab[j][p] = out + b * 0.5;
            out = b - out;
            ++p;
            ap[j] = p >= al[j] ? 0 : p;
        }
        wet[i] = out;
    }
    for (std::ptrdiff_t j = 0; j < n_comb; ++j) {
        cpos[j] = cp[j];
        clast[j] = last[j];
    }
    for (std::ptrdiff_t j = 0; j < n_ap; ++j) apos[j] = ap[j];
}

// The same recurrence with the line counts known at compile time (Freeverb's 8
// and 4): the lines' states stay in registers, and the samples run in stretches
// where no line wraps (positions are then pos + k, no test per sample). Results
// are those of one_row, bit for bit (same operations in the same order).
template <int NC, int NA>
void fixed_row(const double* x, double* wet, std::ptrdiff_t n, double* cbuf, const int64_t* clen,
               int64_t* cpos, double* clast, std::ptrdiff_t c_stride, double* abuf,
               const int64_t* alen, int64_t* apos, std::ptrdiff_t a_stride, double feedback,
               double damp) {
    const double damp1 = 1.0 - damp;
    double last[NC];
    for (int j = 0; j < NC; ++j) last[j] = clast[j];
    std::ptrdiff_t i = 0;
    while (i < n) {
        std::ptrdiff_t len = n - i;
        for (int j = 0; j < NC; ++j) len = std::min<std::ptrdiff_t>(len, clen[j] - cpos[j]);
        for (int j = 0; j < NA; ++j) len = std::min<std::ptrdiff_t>(len, alen[j] - apos[j]);
        double* c[NC];
        double* a[NA];
        for (int j = 0; j < NC; ++j) c[j] = cbuf + j * c_stride + cpos[j];
        for (int j = 0; j < NA; ++j) a[j] = abuf + j * a_stride + apos[j];
        const double* xs = x + i;
        double* ws = wet + i;
        for (std::ptrdiff_t k = 0; k < len; ++k) {
            const double xi = xs[k];
            double out = 0.0;
            for (int j = 0; j < NC; ++j) {
                double o = c[j][k];
                double l = o * damp1 + last[j] * damp;
                last[j] = l;
                c[j][k] = xi + l * feedback;
                out += o;
            }
            for (int j = 0; j < NA; ++j) {
                double b = a[j][k];
                a[j][k] = out + b * 0.5;
                out = b - out;
            }
            ws[k] = out;
        }
        for (int j = 0; j < NC; ++j) {
            std::ptrdiff_t p = cpos[j] + len;
            cpos[j] = p >= clen[j] ? 0 : p;
        }
        for (int j = 0; j < NA; ++j) {
            std::ptrdiff_t p = apos[j] + len;
            apos[j] = p >= alen[j] ? 0 : p;
        }
        i += len;
    }
    for (int j = 0; j < NC; ++j) clast[j] = last[j];
}

// positions inside [0, len) and lengths inside [1, buffer size]: anything else
// would read or write outside the buffers
void check_lines(const int64_t* len, const int64_t* pos, std::ptrdiff_t count, std::ptrdiff_t size,
                 const char* what) {
    for (std::ptrdiff_t i = 0; i < count; ++i)
        if (len[i] < 1 || len[i] > size || pos[i] < 0 || pos[i] >= len[i])
            throw std::invalid_argument(std::string(what) +
                                        ": a delay length or position is out of range");
}

void freeverb_rows(const py::array& inp, py::array& wet, py::array& comb_buf,
                   const py::array& comb_len, py::array& comb_pos, py::array& comb_last,
                   py::array& ap_buf, const py::array& ap_len, py::array& ap_pos, double feedback,
                   double damp, int threads) {
    const double* x = cdata_of<double>(inp, "inp", 2);
    double* y = data_of<double>(wet, "wet", 2);
    double* cb = data_of<double>(comb_buf, "comb_buf", 3);
    const int64_t* cl = cdata_of<int64_t>(comb_len, "comb_len", 2);
    int64_t* cp = data_of<int64_t>(comb_pos, "comb_pos", 2);
    double* cs = data_of<double>(comb_last, "comb_last", 2);
    double* ab = data_of<double>(ap_buf, "ap_buf", 3);
    const int64_t* al = cdata_of<int64_t>(ap_len, "ap_len", 2);
    int64_t* ap = data_of<int64_t>(ap_pos, "ap_pos", 2);
    const std::ptrdiff_t rows = inp.shape(0), n = inp.shape(1);
    const std::ptrdiff_t n_comb = comb_buf.shape(1), c_max = comb_buf.shape(2);
    const std::ptrdiff_t n_ap = ap_buf.shape(1), a_max = ap_buf.shape(2);
    if (wet.shape(0) != rows || wet.shape(1) != n)
        throw std::invalid_argument("wet: expected the shape of inp");
    if (comb_buf.shape(0) != rows || ap_buf.shape(0) != rows)
        throw std::invalid_argument("comb_buf/ap_buf: expected one set of lines per row");
    if (n_comb > MAX_LINES || n_ap > MAX_LINES)
        throw std::invalid_argument("freeverb: at most 16 combs and 16 allpasses");
    using arrays = std::initializer_list<const py::array*>;
    for (const py::array* a : arrays{&comb_len, &comb_pos, &comb_last})
        if (a->shape(0) != rows || a->shape(1) != n_comb)
            throw std::invalid_argument(
                "comb_len/comb_pos/comb_last: expected shape (rows, combs)");
    for (const py::array* a : arrays{&ap_len, &ap_pos})
        if (a->shape(0) != rows || a->shape(1) != n_ap)
            throw std::invalid_argument("ap_len/ap_pos: expected shape (rows, allpasses)");
    check_lines(cl, cp, rows * n_comb, c_max, "comb");
    check_lines(al, ap, rows * n_ap, a_max, "allpass");
    py::gil_scoped_release nogil;
    parallel_for(rows, threads, [&](std::ptrdiff_t r) {
        if (n_comb == 8 && n_ap == 4) {
            fixed_row<8, 4>(x + r * n, y + r * n, n, cb + r * n_comb * c_max, cl + r * n_comb,
                            cp + r * n_comb, cs + r * n_comb, c_max, ab + r * n_ap * a_max,
                            al + r * n_ap, ap + r * n_ap, a_max, feedback, damp);
            return;
        }
        one_row(x + r * n, y + r * n, n, cb + r * n_comb * c_max, cl + r * n_comb, cp + r * n_comb,
                cs + r * n_comb, n_comb, c_max, ab + r * n_ap * a_max, al + r * n_ap,
                ap + r * n_ap, n_ap, a_max, feedback, damp);
    });
}

}  // namespace

void register_reverb(py::module_& m) {
    m.def("freeverb_rows", &freeverb_rows, py::arg("inp"), py::arg("wet"), py::arg("comb_buf"),
          py::arg("comb_len"), py::arg("comb_pos"), py::arg("comb_last"), py::arg("ap_buf"),
          py::arg("ap_len"), py::arg("ap_pos"), py::arg("feedback"), py::arg("damp"),
          py::arg("threads") = 1,
          "Freeverb rows: inp, wet (rows, n) float64; comb_buf (rows, C, Lc), comb_last (rows, "
          "C) float64; comb_len, comb_pos (rows, C) int64; ap_buf (rows, A, La) float64; "
          "ap_len, ap_pos (rows, A) int64. Buffers, positions and states updated in place. GIL "
          "released.");
}

}  // namespace fx
