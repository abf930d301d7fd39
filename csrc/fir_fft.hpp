// The overlap-save loop of the FIR kernel (csrc/fir.cpp), generic in the vector type
// that carries FLANES frames at once. Included twice: by fir.cpp (2-wide SSE2
// vectors, the baseline) and by fir_avx2.cpp inside a namespace of its own, compiled
// for AVX2 with 4-wide vectors and picked at run time where the CPU has AVX2. The
// includer makes pocketfft:: (csrc/third_party/pocketfft) visible first. Lane by
// lane the arithmetic is the same operations in the same order, so both give the
// same bits.
#pragma once

// full[j] of one row: the history, then x, then zeros.
template <class T>
struct FirRow {
    const T* x;
    const double* hist;
    std::ptrdiff_t n, hk;  // samples of x, history length K-1

    // dst[i*stride] = full[j0 + i] for i < len
    void copy(std::ptrdiff_t j0, std::ptrdiff_t len, double* dst, std::ptrdiff_t stride) const {
        std::ptrdiff_t i = 0;
        for (; i < len && j0 + i < hk; ++i) dst[i * stride] = hist[j0 + i];
        std::ptrdiff_t end = std::min(len, hk + n - j0);
        const T* xp = x + (j0 - hk);
        for (; i < end; ++i) dst[i * stride] = static_cast<double>(xp[i]);
        for (; i < len; ++i) dst[i * stride] = 0.0;
    }
};

// One call's arguments. hf: the taps' spectrum in pocketfft's halfcomplex order
// (r0, r1, i1, r2, i2, ...), scaled by 1/nfft.
template <class T>
struct FirFft {
    const T* x;
    T* y;
    std::ptrdiff_t rows, n, k, nfft;
    const double* hf;
    const double* hist;
    const pocketfft::detail::pocketfft_r<double>* plan;
};

// Work items [lo, hi) (item = a row and FLANES consecutive frames): frame f reads
// full[f*step, f*step + nfft) of its row and yields outputs f*step .. f*step+step-1.
// A function of its own, not a lambda, so that fir_avx2.cpp's target pragma covers it.
template <class fvec, int FLANES, class T>
void fir_fft_span(const FirFft<T>& a, std::ptrdiff_t lo, std::ptrdiff_t hi) {
    const std::ptrdiff_t nfft = a.nfft, hk = a.k - 1, step = nfft - hk, n = a.n;
    const std::ptrdiff_t n_frames = (n + step - 1) / step;
    const std::ptrdiff_t groups = (n_frames + FLANES - 1) / FLANES;
    const double* hf = a.hf;
    // scratch of nfft vectors, aligned by hand (no std::vector<fvec>: no template
    // instance of the standard library is shared between the two builds of this loop)
    std::vector<double> raw(static_cast<size_t>((nfft + 1) * FLANES));
    const std::uintptr_t addr = reinterpret_cast<std::uintptr_t>(raw.data());
    const std::uintptr_t align = sizeof(fvec);
    double* b = reinterpret_cast<double*>((addr + align - 1) / align * align);
    fvec* buf = reinterpret_cast<fvec*>(b);
    for (std::ptrdiff_t it = lo; it < hi; ++it) {
        const std::ptrdiff_t r = it / groups, f0 = (it % groups) * FLANES;
        const FirRow<T> row{a.x + r * n, a.hist + r * hk, n, hk};
        const int used = static_cast<int>(std::min<std::ptrdiff_t>(FLANES, n_frames - f0));
        for (int l = 0; l < FLANES; ++l) {
            if (l < used)
                row.copy((f0 + l) * step, nfft, b + l, FLANES);
            else
                for (std::ptrdiff_t j = 0; j < nfft; ++j) b[j * FLANES + l] = 0.0;
        }
        a.plan->exec(buf, 1.0, true);
        buf[0] = buf[0] * hf[0];
        std::ptrdiff_t i = 1;
        for (; i + 1 < nfft; i += 2) {
            const fvec re = buf[i], im = buf[i + 1];
            const double hr = hf[i], hi_ = hf[i + 1];
            buf[i] = re * hr - im * hi_;
            buf[i + 1] = re * hi_ + im * hr;
        }
        if (i < nfft) buf[i] = buf[i] * hf[i];
        a.plan->exec(buf, 1.0, false);
        T* yr = a.y + r * n;
        for (int l = 0; l < used; ++l) {
            const std::ptrdiff_t t0 = (f0 + l) * step;
            const std::ptrdiff_t cnt = std::min(step, n - t0);
            const double* src = b + hk * FLANES + l;
            for (std::ptrdiff_t j = 0; j < cnt; ++j) yr[t0 + j] = static_cast<T>(src[j * FLANES]);
        }
    }
}

// The whole call: the items split into contiguous spans, one per thread (each with
// its own scratch buffer).
template <class fvec, int FLANES, class T>
void fir_fft_frames(const T* x, T* y, std::ptrdiff_t rows, std::ptrdiff_t n, const double* hf,
                    std::ptrdiff_t k, const double* hist, std::ptrdiff_t nfft, int threads) {
    const std::ptrdiff_t step = nfft - (k - 1);
    const std::ptrdiff_t groups = ((n + step - 1) / step + FLANES - 1) / FLANES;
    const std::ptrdiff_t items = rows * groups;
    const pocketfft::detail::pocketfft_r<double> plan(static_cast<size_t>(nfft));
    const FirFft<T> a{x, y, rows, n, k, nfft, hf, hist, &plan};
    const int t = static_cast<int>(std::min<std::ptrdiff_t>(std::max(threads, 1), items));
    fx::parallel_for(t, t, [&](std::ptrdiff_t part) {
        fir_fft_span<fvec, FLANES, T>(a, items * part / t, items * (part + 1) / t);
    });
}
