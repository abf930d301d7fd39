// The C library's policy for freed large blocks, for the command line (issue 15).
//
// glibc serves a block of 128 KiB or more (rising with use, at most 32 MiB) with its
// own mmap and gives it back to the system when it is freed; blocks at the top of
// the heap beyond 128 KiB are also given back (trimmed). The engine's buffers of a
// chunk are 10-40 MB (decoded samples, filtered samples, encoded bytes), allocated
// and freed once per chunk: each new one was mapped afresh and every page of it
// faulted in and zeroed by the kernel. Profiled on `fxcli process` of an 8-channel
// 120 s 24-bit WAV (2-core VM): 15.6 % of the command's CPU samples were the kernel
// clearing new pages (clear_page_erms); with the freed blocks kept, 1,200 fewer page
// faults (13.5k -> 12.3k) and the command's CPU time 5 % lower (median of 7
// alternations, 655 -> 620 ms); peak RSS unchanged (the same buffers are in use at
// once). Raising the two thresholds keeps freed blocks in the heap for the next
// chunk. The process keeps them until it exits, which a batch command does.
#include "common.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace fx {
namespace {

// True when both thresholds were set (glibc), else false (another C library).
bool keep_freed_memory(long mmap_threshold, long trim_threshold) {
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD)
    if (mmap_threshold <= 0 || trim_threshold <= 0)
        throw std::invalid_argument("keep_freed_memory: thresholds must be > 0");
    const int a = mallopt(M_MMAP_THRESHOLD, static_cast<int>(std::min(mmap_threshold, 1L << 30)));
    const int b = mallopt(M_TRIM_THRESHOLD, static_cast<int>(std::min(trim_threshold, 1L << 30)));
    return a == 1 && b == 1;
#else
    (void)mmap_threshold;
    (void)trim_threshold;
    return false;
#endif
}

}  // namespace

void register_memory(py::module_& m) {
    m.def("keep_freed_memory", &keep_freed_memory, py::arg("mmap_threshold"),
          py::arg("trim_threshold"),
          "glibc: serve blocks below mmap_threshold bytes from the heap and keep up to "
          "trim_threshold bytes of freed memory at its top (mallopt M_MMAP_THRESHOLD, "
          "M_TRIM_THRESHOLD; each capped at 1 GiB). Returns True when both were set, "
          "False with another C library (nothing changed).");
}

}  // namespace fx
