// The FIR kernel's overlap-save loop (csrc/fir_fft.hpp) and pocketfft compiled for
// AVX2, four frames per 256-bit vector; csrc/fir.cpp calls it where the CPU has AVX2
// (x86-64 with GCC; elsewhere fir_fft_avx2 reports false and the SSE2 loop runs).
// pocketfft and the loop are included inside namespace fx::avx2 so that none of their
// (inline, template) functions share a symbol with the baseline build of fir.cpp: the
// linker can never hand AVX2 code to a CPU without it. No FMA: -ffp-contract=off and
// the target is "avx2" alone, so lane by lane the bits are the SSE2 loop's.
#include "common.hpp"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(FX_NO_CLONES)
#define FX_FIR_AVX2 1
// everything pocketfft includes, first: inside the namespace its includes are no-ops
#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <vector>

#pragma GCC push_options
#pragma GCC target("avx2")
namespace fx {
namespace avx2 {
#define POCKETFFT_NO_MULTITHREADING
#include "third_party/pocketfft/pocketfft_hdronly.h"
#include "fir_fft.hpp"
typedef double v4 __attribute__((vector_size(32)));
// instantiated here, under the target pragma
template void fir_fft_span<v4, 4, float>(const FirFft<float>&, std::ptrdiff_t, std::ptrdiff_t);
template void fir_fft_span<v4, 4, double>(const FirFft<double>&, std::ptrdiff_t,
                                          std::ptrdiff_t);
}  // namespace avx2
}  // namespace fx
#pragma GCC pop_options
#endif

namespace fx {

template <class T>
bool fir_fft_avx2(const T* x, T* y, std::ptrdiff_t rows, std::ptrdiff_t n, const double* hf,
                  std::ptrdiff_t k, const double* hist, std::ptrdiff_t nfft, int threads) {
#ifdef FX_FIR_AVX2
    if (!__builtin_cpu_supports("avx2")) return false;
    avx2::fir_fft_frames<avx2::v4, 4>(x, y, rows, n, hf, k, hist, nfft, threads);
    return true;
#else
    (void)x, (void)y, (void)rows, (void)n, (void)hf, (void)k, (void)hist, (void)nfft,
        (void)threads;
    return false;
#endif
}

template bool fir_fft_avx2<float>(const float*, float*, std::ptrdiff_t, std::ptrdiff_t,
                                  const double*, std::ptrdiff_t, const double*, std::ptrdiff_t,
                                  int);
template bool fir_fft_avx2<double>(const double*, double*, std::ptrdiff_t, std::ptrdiff_t,
                                   const double*, std::ptrdiff_t, const double*, std::ptrdiff_t,
                                   int);

}  // namespace fx
