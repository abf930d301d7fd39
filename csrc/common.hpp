// Shared helpers of fxcli's compiled CPU core (fxcli._core).
//
// Every kernel takes numpy arrays that the Python wrapper has already checked
// (dtype, C order, shapes), releases the GIL while it runs, and spreads
// independent rows over plain threads (std::thread; joined before returning: no
// pool, nothing spins, nothing survives a fork).
//
// Arithmetic: the build passes -ffp-contract=off and never -ffast-math, so a
// product followed by a sum is never fused into an FMA and every kernel computes
// exactly what its operation order says (SciPy's, where SciPy is the reference).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace py = pybind11;

namespace fx {

// Portable 4-wide float64 vector (GCC/Clang vector extension): four channels
// filtered together. Baseline x86-64 builds compile it to SSE2 pairs; the tile
// kernels are also cloned for AVX2 and picked at load time where the compiler
// and platform support it (FX_CLONES). Lane by lane the arithmetic is the scalar
// code's, so vector and scalar rows give identical bits.
#if defined(__GNUC__) || defined(__clang__)
typedef double v4d __attribute__((vector_size(32)));
#define FX_HAVE_VEC 1
#else
#define FX_HAVE_VEC 0
#endif

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && defined(__linux__) && \
    !defined(FX_NO_CLONES)
#define FX_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define FX_CLONES
#endif

constexpr int LANES = 4;

// Run fn(i) for i in [0, n) on up to `threads` threads (the calling one included).
// Items are handed out in contiguous blocks of equal count; fn must be safe to run
// concurrently for different i. Exceptions are not expected (kernels don't throw).
inline void parallel_for(std::ptrdiff_t n, int threads,
                         const std::function<void(std::ptrdiff_t)>& fn) {
    if (n <= 0) return;
    int t = static_cast<int>(std::min<std::ptrdiff_t>(std::max(threads, 1), n));
    if (t == 1) {
        for (std::ptrdiff_t i = 0; i < n; ++i) fn(i);
        return;
    }
    std::vector<std::thread> pool;
    pool.reserve(t - 1);
    auto span = [&](int k) {
        std::ptrdiff_t lo = n * k / t, hi = n * (k + 1) / t;
        for (std::ptrdiff_t i = lo; i < hi; ++i) fn(i);
    };
    for (int k = 1; k < t; ++k) pool.emplace_back(span, k);
    span(0);
    for (auto& th : pool) th.join();
}

// Checks used by every binding (the Python wrappers validate user input; these
// guard the wrapper/kernel contract and name the argument when it is broken).
template <class T>
inline T* data_of(py::array& a, const char* name, int ndim) {
    if (a.ndim() != ndim)
        throw std::invalid_argument(std::string(name) + ": expected " + std::to_string(ndim) +
                                    "-D array, got " + std::to_string(a.ndim()) + "-D");
    if (!py::isinstance<py::array_t<T>>(a) ||
        !(a.flags() & py::array::c_style))
        throw std::invalid_argument(std::string(name) + ": wrong dtype or not C-contiguous");
    if (!a.writeable())
        throw std::invalid_argument(std::string(name) + ": array is read-only");
    return static_cast<T*>(a.mutable_data());
}

template <class T>
inline const T* cdata_of(const py::array& a, const char* name, int ndim) {
    if (a.ndim() != ndim)
        throw std::invalid_argument(std::string(name) + ": expected " + std::to_string(ndim) +
                                    "-D array, got " + std::to_string(a.ndim()) + "-D");
    if (!py::isinstance<py::array_t<T>>(a) || !(a.flags() & py::array::c_style))
        throw std::invalid_argument(std::string(name) + ": wrong dtype or not C-contiguous");
    return static_cast<const T*>(a.data());
}

inline bool is_f32(const py::array& a) { return py::isinstance<py::array_t<float>>(a); }

}  // namespace fx
