// The causal FIR filter, float64 arithmetic: y[m] = sum_k h[k] * full[m + K-1 - k]
// with full = concat(hist, x, zeros), hist the K-1 input samples before x.
//
// Two methods, chosen by the Python wrapper (fxcli/dsp/fir/cpu.py):
// - overlap-save FFT (nfft > 0): frame f reads full[f*step, f*step + nfft) with
//   step = nfft - (K-1); its real FFT (pocketfft, vendored header-only, BSD-3,
//   csrc/third_party/pocketfft) is multiplied by the taps' spectrum and
//   transformed back; the last `step` points are outputs f*step .. f*step+step-1.
//   Frames run two at a time in the lanes of a 2-wide vector (see fvec), four at a
//   time in 256-bit vectors where the CPU has AVX2 (fir_avx2.cpp; the same bits).
//   The taps' spectrum is pre-scaled by 1/nfft (exact for a power-of-two nfft, so
//   the bits are those of scaling after the inverse transform, as numpy's irfft does).
// - direct (nfft == 0): explicit K-term sums in ascending k, 16 outputs at a time.
//
// Work items (a row and a run of frames or outputs) are split into equal
// contiguous spans over the threads; each thread owns its scratch buffers. The
// result is rounded once to x's dtype. The history is only read: the wrapper
// copies the new one (the last K-1 samples of concat(hist, x)).
#define POCKETFFT_NO_MULTITHREADING  // fxcli's threads only: no pool, nothing spins
#include "third_party/pocketfft/pocketfft_hdronly.h"

#include "common.hpp"

namespace fx {

#include "fir_fft.hpp"

template <class T>
bool fir_fft_avx2(const T* x, T* y, std::ptrdiff_t rows, std::ptrdiff_t n, const double* hf,
                  std::ptrdiff_t k, const double* hist, std::ptrdiff_t nfft, int threads);

namespace {

// Two frames per vector in the baseline build: measured on the 2-core dev VM (AMD
// EPYC, K = 511, one thread) ~1.4x one frame at a time, while 4-wide vectors without
// AVX (two SSE2 halves per operation in pocketfft's generic code) were ~5x slower
// than scalar; with AVX2 (fir_avx2.cpp) 4 frames per vector are ~1.4x the 2-wide loop.
#if FX_HAVE_VEC
typedef double fvec __attribute__((vector_size(16)));
constexpr int FLANES = 2;
#else
typedef double fvec;
constexpr int FLANES = 1;
#endif

template <class T>
void fir_fft(const T* x, T* y, std::ptrdiff_t rows, std::ptrdiff_t n, const double* h,
             std::ptrdiff_t k, const double* hist, std::ptrdiff_t nfft, int threads, bool wide) {
    // the taps' spectrum in pocketfft's halfcomplex order, scaled by 1/nfft
    std::vector<double> hf(nfft, 0.0);
    std::copy(h, h + k, hf.begin());
    pocketfft::detail::pocketfft_r<double>(static_cast<size_t>(nfft))
        .exec(hf.data(), 1.0 / static_cast<double>(nfft), true);
    if (wide && fir_fft_avx2(x, y, rows, n, hf.data(), k, hist, nfft, threads)) return;
    fir_fft_frames<fvec, FLANES>(x, y, rows, n, hf.data(), k, hist, nfft, threads);
}

// Outputs per work item of the direct method.
constexpr std::ptrdiff_t DIRECT_BLOCK = 2048;
constexpr int DIRECT_W = 16;  // outputs per inner step

template <class T>
void fir_direct(const T* x, T* y, std::ptrdiff_t rows, std::ptrdiff_t n, const double* h,
                std::ptrdiff_t k, const double* hist, int threads) {
    const std::ptrdiff_t hk = k - 1;
    const std::ptrdiff_t blocks = (n + DIRECT_BLOCK - 1) / DIRECT_BLOCK;
    const std::ptrdiff_t items = rows * blocks;
    const int t = static_cast<int>(std::min<std::ptrdiff_t>(std::max(threads, 1), items));
    parallel_for(t, t, [&](std::ptrdiff_t part) {
        const std::ptrdiff_t lo = items * part / t, hi = items * (part + 1) / t;
        // inputs of one block, padded to whole groups of DIRECT_W outputs
        std::vector<double> in(DIRECT_BLOCK + hk + DIRECT_W);
        std::vector<double> out(DIRECT_BLOCK + DIRECT_W);
        for (std::ptrdiff_t it = lo; it < hi; ++it) {
            const std::ptrdiff_t r = it / blocks, t0 = (it % blocks) * DIRECT_BLOCK;
            const std::ptrdiff_t cnt = std::min(DIRECT_BLOCK, n - t0);
            const std::ptrdiff_t padded = (cnt + DIRECT_W - 1) / DIRECT_W * DIRECT_W;
            const FirRow<T> row{x + r * n, hist + r * hk, n, hk};
            row.copy(t0, padded + hk, in.data(), 1);
            // out[m] = sum_k h[k] * in[m + K-1 - k], k ascending
            for (std::ptrdiff_t m = 0; m < padded; m += DIRECT_W) {
                double acc[DIRECT_W] = {};
                const double* base = in.data() + m + hk;
                for (std::ptrdiff_t q = 0; q < k; ++q) {
                    const double c = h[q];
                    const double* p = base - q;
                    for (int w = 0; w < DIRECT_W; ++w) acc[w] += c * p[w];
                }
                for (int w = 0; w < DIRECT_W; ++w) out[m + w] = acc[w];
            }
            T* yr = y + r * n + t0;
            for (std::ptrdiff_t j = 0; j < cnt; ++j) yr[j] = static_cast<T>(out[j]);
        }
    });
}

template <class T>
void run(const T* x, T* y, std::ptrdiff_t rows, std::ptrdiff_t n, const double* h,
         std::ptrdiff_t k, const double* hist, std::ptrdiff_t nfft, int threads, bool wide) {
    if (rows == 0 || n == 0) return;
    if (nfft > 0)
        fir_fft(x, y, rows, n, h, k, hist, nfft, threads, wide);
    else
        fir_direct(x, y, rows, n, h, k, hist, threads);
}

void firfilt(const py::array& x, py::array& y, const py::array& h, const py::array& hist,
             std::ptrdiff_t nfft, int threads, bool wide) {
    const double* hp = cdata_of<double>(h, "h", 1);
    const double* zp = cdata_of<double>(hist, "hist", 2);
    if (x.ndim() != 2) throw std::invalid_argument("x: expected a 2-D array");
    const std::ptrdiff_t rows = x.shape(0), n = x.shape(1), k = h.shape(0);
    if (k < 1) throw std::invalid_argument("h: expected K >= 1 taps");
    if (y.ndim() != 2 || y.shape(0) != rows || y.shape(1) != n)
        throw std::invalid_argument("y: expected the shape of x");
    if (hist.shape(0) != rows || hist.shape(1) != k - 1)
        throw std::invalid_argument("hist: expected shape (rows, K - 1)");
    if (nfft < 0 || (nfft > 0 && nfft < k))
        throw std::invalid_argument("nfft: expected 0 (direct) or an FFT length >= K");
    if (is_f32(x)) {
        const float* xp = cdata_of<float>(x, "x", 2);
        float* yp = data_of<float>(y, "y", 2);
        py::gil_scoped_release nogil;
        run(xp, yp, rows, n, hp, k, zp, nfft, threads, wide);
    } else {
        const double* xp = cdata_of<double>(x, "x", 2);
        double* yp = data_of<double>(y, "y", 2);
        py::gil_scoped_release nogil;
        run(xp, yp, rows, n, hp, k, zp, nfft, threads, wide);
    }
}

}  // namespace

void register_fir(py::module_& m) {
    m.def("firfilt", &firfilt, py::arg("x"), py::arg("y"), py::arg("h"), py::arg("hist"),
          py::arg("nfft"), py::arg("threads") = 1, py::arg("wide") = true,
          "Causal FIR: x (rows, n) float32/float64 -> y (same shape and dtype, not "
          "overlapping x), "
          "y[m] = sum_k h[k] * concat(hist, x)[m + K-1 - k]; h (K,) float64, hist (rows, K-1) "
          "float64 input history (read only). nfft > 0: overlap-save FFT of nfft points "
          "(nfft >= K; frames advance by nfft - K + 1); nfft == 0: direct sums. float64 "
          "arithmetic, rounded once to x's dtype. GIL released. wide=False: the baseline "
          "2-frame vectors even where the 4-frame AVX2 loop runs (the same bits).");
}

}  // namespace fx
