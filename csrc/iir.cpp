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
// with 4-wide vectors: four channels for about the cost of one. Pairs and single
// rows put sections, skewed by one sample each, in the lanes instead
// (iir_skew.hpp): inputs of fewer than 4 rows always; larger ones are split into
// tiles, pairs and a single by measured cost and spread over the threads
// (vector_rows). The section loops and the adjoint's row/thread policy are in
// iir_kernels.hpp; tiles=False keeps scalar rows (the reference).
#include <algorithm>
#include <vector>

#include "iir_kernels.hpp"
#include "iir_skew.hpp"

namespace fx {
namespace {

#if FX_HAVE_VEC
// Work items of the forward cascade on >= LANES rows (issue 15): tiles of 4 rows
// (channels in the lanes), pairs of rows and single rows with the sections skewed
// in the lanes (iir_skew.hpp). Measured per row and frame on the 2-core AMD EPYC
// (Zen 3) VM, AVX2, one thread, float32 (float64 within 10 %), ns:
//   sections  1-4: tile 1.45, pair 1.95, single 4.4
//   sections  5-8: tile 2.5,  pair 2.25, single 4.9
//   sections 9-16: tile 3.7-4.9, pair 4.4-5.1, single 5.4-6.3
// (the scalar row: 12). The old policy cost a tile at 2.2 scalar rows and sent the
// rows of a 4-channel file on 2 threads to scalar code (2.3x slower than one tile)
// and a 6-channel file's last 2 rows too; now every row is in vector lanes and the
// items are spread over the threads by their cost (longest first, each to the
// least loaded thread).
struct RowItem {
    int kind;  // 4: tile, 2: pair, 1: single (skewed)
    std::ptrdiff_t r0;
    double cost;
};

inline double row_cost(int kind, std::ptrdiff_t n_sec) {
    const double tile = n_sec <= 4 ? 1.45 : n_sec <= 8 ? 2.5 : 4.3;
    const double pair = n_sec <= 4 ? 1.95 : n_sec <= 8 ? 2.25 : 4.75;
    const double single = n_sec <= 4 ? 4.4 : n_sec <= 8 ? 4.9 : 5.8;
    return kind == 4 ? 4 * tile : kind == 2 ? 2 * pair : single;
}

// The items for `tiles` tiles and the rest of the rows in pairs (and a single),
// and their makespan on th threads (longest first to the least loaded thread);
// `assign` receives each thread's items.
inline double plan_rows(std::ptrdiff_t rows, std::ptrdiff_t tiles, std::ptrdiff_t n_sec, int th,
                        std::vector<std::vector<RowItem>>* assign) {
    std::vector<RowItem> items;
    std::ptrdiff_t r = 0;
    for (; r < LANES * tiles; r += LANES) items.push_back({4, r, row_cost(4, n_sec)});
    for (; r + 2 <= rows; r += 2) items.push_back({2, r, row_cost(2, n_sec)});
    if (r < rows) items.push_back({1, r, row_cost(1, n_sec)});
    std::stable_sort(items.begin(), items.end(),
                     [](const RowItem& a, const RowItem& b) { return a.cost > b.cost; });
    std::vector<double> load(static_cast<size_t>(th), 0.0);
    if (assign != nullptr) assign->assign(static_cast<size_t>(th), {});
    for (const RowItem& it : items) {
        size_t k = static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());
        load[k] += it.cost;
        if (assign != nullptr) (*assign)[k].push_back(it);
    }
    return *std::max_element(load.begin(), load.end());
}

template <class T>
void vector_rows(const T* x, T* y, std::ptrdiff_t rows, std::ptrdiff_t n_t, const double* sos,
                 std::ptrdiff_t n_sec, double* z, int threads) {
    int th = static_cast<int>(std::min<std::ptrdiff_t>(std::max(threads, 1), rows));
    if (rows * n_t < PAR_MIN_SAMPLES) th = 1;
    std::ptrdiff_t best = 0;
    double best_span = plan_rows(rows, 0, n_sec, th, nullptr);
    for (std::ptrdiff_t t = 1; t <= rows / LANES; ++t) {
        const double span = plan_rows(rows, t, n_sec, th, nullptr);
        if (span < best_span * (1.0 - 1e-9)) {
            best = t;
            best_span = span;
        }
    }
    std::vector<std::vector<RowItem>> assign;
    plan_rows(rows, best, n_sec, th, &assign);
    parallel_for(th, th, [&](std::ptrdiff_t k) {
        for (const RowItem& it : assign[static_cast<size_t>(k)]) {
            if (it.kind == 4)
                one_tile(x, y, n_t, sos, n_sec, z, rows, it.r0);
            else if (it.kind == 2)
                skew_rows<2>(x, y, n_t, sos, n_sec, z, rows, it.r0);
            else
                skew_rows<1>(x, y, n_t, sos, n_sec, z, rows, it.r0);
        }
    });
}
#endif

template <class T>
void cascade(const T* x, T* y, std::ptrdiff_t rows, std::ptrdiff_t n_t, const double* sos,
             std::ptrdiff_t n_sec, double* z, int threads, bool use_tiles) {
#if FX_HAVE_VEC
    if (use_tiles && rows < LANES && n_sec > 0) {  // mono/stereo: sections in the lanes
        skew_cascade(x, y, rows, n_t, sos, n_sec, z, threads);
        return;
    }
    if (use_tiles && n_sec > 0 && skew_have_avx2()) {  // tiles, pairs and singles by cost
        vector_rows(x, y, rows, n_t, sos, n_sec, z, threads);
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
