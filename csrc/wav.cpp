// The WAV codec of fxcli.io.wavfast: interleaved little-endian samples <->
// (channels, frames) float arrays.
//
// Decoding gives libsndfile's values: integer PCM q (16, 24 or 32 bit) is put in
// the top bits of an int32 (sign for free) and multiplied by 2**-31 in float64
// (exact), then rounded once to the output dtype; IEEE float samples are copied
// (double -> float rounds to nearest, like a C cast).
//
// Encoding (PCM, 2, 3 or 4 bytes): v = double(y) * 2**(bits-1) [+ dither], then
// rint (half to even, the default rounding mode), clipped to the integer range
// and counted; NaN is stored as 0. Same operations, in the same order, as the
// numba kernels this file replaces (bit for bit, byte for byte).
//
// The codec is memory bound and runs on the caller's thread (the engine's
// reader and writer threads overlap it with compute); the GIL is released.
#include "common.hpp"

#include <cmath>
#include <cstring>

namespace fx {
namespace {

constexpr double SCALE31 = 1.0 / 2147483648.0;

enum Kind { I16 = 0, I24 = 1, I32 = 2, F32 = 3, F64 = 4 };

inline int32_t sample_i32(const uint8_t* b, int kind) {
    uint32_t u;
    switch (kind) {
        case I16: u = (uint32_t(b[0]) << 16) | (uint32_t(b[1]) << 24); break;
        case I24:
            u = (uint32_t(b[0]) << 8) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 24);
            break;
        default:
            u = uint32_t(b[0]) | (uint32_t(b[1]) << 8) | (uint32_t(b[2]) << 16) |
                (uint32_t(b[3]) << 24);
            break;
    }
    return static_cast<int32_t>(u);
}

// integer PCM, W bytes per sample, CH channels (0: ch at run time)
template <int KIND, int W, int CH, class Out>
void dec_int(const uint8_t* buf, Out* out, std::ptrdiff_t ch_rt, std::ptrdiff_t n) {
    const std::ptrdiff_t ch = CH ? CH : ch_rt;
    for (std::ptrdiff_t i = 0; i < n; ++i) {
        const uint8_t* f = buf + i * ch * W;
        for (std::ptrdiff_t c = 0; c < ch; ++c) {
            int32_t v = sample_i32(f + c * W, KIND);
            out[c * n + i] = static_cast<Out>(static_cast<double>(v) * SCALE31);
        }
    }
}

template <class In, int CH, class Out>
void dec_float(const uint8_t* buf, Out* out, std::ptrdiff_t ch_rt, std::ptrdiff_t n) {
    const std::ptrdiff_t ch = CH ? CH : ch_rt;
    for (std::ptrdiff_t i = 0; i < n; ++i) {
        const uint8_t* f = buf + i * ch * sizeof(In);
        for (std::ptrdiff_t c = 0; c < ch; ++c) {
            In v;
            std::memcpy(&v, f + c * sizeof(In), sizeof(In));
            out[c * n + i] = static_cast<Out>(v);
        }
    }
}

template <int CH, class Out>
void dec_kind(int kind, const uint8_t* buf, Out* out, std::ptrdiff_t ch, std::ptrdiff_t n) {
    switch (kind) {
        case I16: dec_int<I16, 2, CH>(buf, out, ch, n); break;
        case I24: dec_int<I24, 3, CH>(buf, out, ch, n); break;
        case I32: dec_int<I32, 4, CH>(buf, out, ch, n); break;
        case F32: dec_float<float, CH>(buf, out, ch, n); break;
        default: dec_float<double, CH>(buf, out, ch, n); break;
    }
}

template <class Out>
void dec(int kind, const uint8_t* buf, Out* out, std::ptrdiff_t ch, std::ptrdiff_t n) {
    switch (ch) {
        case 1: dec_kind<1>(kind, buf, out, ch, n); break;
        case 2: dec_kind<2>(kind, buf, out, ch, n); break;
        default: dec_kind<0>(kind, buf, out, ch, n); break;
    }
}

constexpr int WIDTH[] = {2, 3, 4, 4, 8};

void wav_decode(const py::array& raw, int kind, py::array& out) {
    if (kind < I16 || kind > F64) throw std::invalid_argument("kind: expected 0 .. 4");
    const uint8_t* buf = cdata_of<uint8_t>(raw, "raw", 1);
    if (out.ndim() != 2) throw std::invalid_argument("out: expected a 2-D array");
    std::ptrdiff_t ch = out.shape(0), n = out.shape(1);
    if (raw.shape(0) < ch * n * WIDTH[kind])
        throw std::invalid_argument("raw: fewer bytes than the frames of out");
    if (is_f32(out)) {
        float* o = data_of<float>(out, "out", 2);
        py::gil_scoped_release nogil;
        dec(kind, buf, o, ch, n);
    } else {
        double* o = data_of<double>(out, "out", 2);
        py::gil_scoped_release nogil;
        dec(kind, buf, o, ch, n);
    }
}

// rint(v) in the default rounding mode (to nearest, ties to even), exactly: for
// |v| < 2**52 the sum |v| + 2**52 lies where the float64 spacing is 1, so the
// addition itself rounds |v| to an integer (ties to even, 2**52 being even) and
// the subtraction is exact; larger values, infinities and NaN are already
// integral (or stay NaN). Inline SSE2 arithmetic instead of a libm call.
inline double rint_exact(double v) {
    constexpr double TWO52 = 4503599627370496.0;
    double a = std::fabs(v);
    if (!(a < TWO52)) return v;
    return std::copysign((a + TWO52) - TWO52, v);
}

constexpr std::ptrdiff_t ENC_BLOCK = 1024;  // frames quantized per pass
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
constexpr bool LITTLE_ENDIAN_HOST = true;
#else
constexpr bool LITTLE_ENDIAN_HOST = false;
#endif

// One sample: v = y * scale [+ d], rint, clipped to [lo, hi] (counted), NaN -> 0.
inline int32_t quantize1(double v, double lo, double hi, std::ptrdiff_t& clipped) {
    v = rint_exact(v);
    if (v < lo) {
        v = lo;
        ++clipped;
    } else if (v > hi) {
        v = hi;
        ++clipped;
    } else if (v != v) {
        v = 0.0;
    }
    return static_cast<int32_t>(v);
}

#if FX_HAVE_VEC
typedef long long v4i __attribute__((vector_size(32)));
typedef int v4si __attribute__((vector_size(16)));
#endif

// One channel's samples y[0:m] (+ dither d[k * ds], k < m) quantized to q[0:m];
// returns the clipped count. Four samples at a time, lane by lane the scalar
// operations of quantize1 (the selects and the sign copy are exact).
template <int NB, bool DITHER, class In>
FX_CLONES std::ptrdiff_t quantize(const In* y, const double* d, std::ptrdiff_t ds, int32_t* q,
                                  std::ptrdiff_t m) {
    const double scale = static_cast<double>(int64_t(1) << (8 * NB - 1));
    const double lo = -scale, hi = scale - 1.0;
    std::ptrdiff_t clipped = 0, k = 0;
#if FX_HAVE_VEC
    const double two52 = 4503599627370496.0;
    const v4d vscale = {scale, scale, scale, scale}, vlo = {lo, lo, lo, lo},
              vhi = {hi, hi, hi, hi}, vt = {two52, two52, two52, two52}, zero = {0, 0, 0, 0};
    const long long sign = static_cast<long long>(0x8000000000000000ULL);
    const v4i vsign = {sign, sign, sign, sign};
    v4i count = {0, 0, 0, 0};
    for (; k + LANES <= m; k += LANES) {
        v4d v = v4d{static_cast<double>(y[k]), static_cast<double>(y[k + 1]),
                    static_cast<double>(y[k + 2]), static_cast<double>(y[k + 3])} *
                vscale;
        if (DITHER) v = v + v4d{d[k * ds], d[(k + 1) * ds], d[(k + 2) * ds], d[(k + 3) * ds]};
        // rint_exact, lane-wise: |v| < 2**52 -> copysign((|v| + 2**52) - 2**52, v)
        v4d a = (v4d)((v4i)v & ~vsign);
        v4d r = (v4d)((v4i)((a + vt) - vt) | ((v4i)v & vsign));
        v = a < vt ? r : v;
        v4i below = v < vlo, above = v > vhi;  // lanes: -1 where true
        count -= below + above;
        v = below ? vlo : v;
        v = above ? vhi : v;
        v = v == v ? v : zero;
        v4si qi = __builtin_convertvector(v, v4si);
        std::memcpy(q + k, &qi, sizeof qi);
    }
    clipped = count[0] + count[1] + count[2] + count[3];
#endif
    for (; k < m; ++k) {
        double v = static_cast<double>(y[k]) * scale;
        if (DITHER) v += d[k * ds];
        q[k] = quantize1(v, lo, hi, clipped);
    }
    return clipped;
}

// Quantize in blocks of frames, one channel at a time, then interleave the
// little-endian bytes (the low NB bytes of each int32).
template <int NB, int CH, bool DITHER, class In>
std::ptrdiff_t enc(const In* y, const double* dither, std::ptrdiff_t d_stride, uint8_t* out,
                   std::ptrdiff_t ch_rt, std::ptrdiff_t n) {
    const std::ptrdiff_t ch = CH ? CH : ch_rt;
    std::vector<int32_t> qbuf(static_cast<size_t>(ch * std::min(ENC_BLOCK, n)));
    int32_t* q = qbuf.data();
    const std::ptrdiff_t total = ch * n;
    std::ptrdiff_t clipped = 0, k = 0;
    for (std::ptrdiff_t i0 = 0; i0 < n; i0 += ENC_BLOCK) {
        const std::ptrdiff_t m = std::min(ENC_BLOCK, n - i0);
        for (std::ptrdiff_t c = 0; c < ch; ++c)
            clipped += quantize<NB, DITHER>(y + c * n + i0,
                                            DITHER ? dither + i0 * d_stride + c : nullptr,
                                            d_stride, q + c * m, m);
        for (std::ptrdiff_t i = 0; i < m; ++i) {
            for (std::ptrdiff_t c = 0; c < ch; ++c, ++k) {
                uint8_t* o = out + k * NB;
                const uint32_t u = static_cast<uint32_t>(q[c * m + i]);
                if (NB == 3 && LITTLE_ENDIAN_HOST && k + 1 < total) {
                    std::memcpy(o, &u, 4);  // the 4th byte is the next sample's, rewritten next
                } else {
                    for (int b = 0; b < NB; ++b) o[b] = static_cast<uint8_t>(u >> (8 * b));
                }
            }
        }
    }
    return clipped;
}

template <int NB, bool DITHER, class In>
std::ptrdiff_t enc_ch(const In* y, const double* d, std::ptrdiff_t ds, uint8_t* out,
                      std::ptrdiff_t ch, std::ptrdiff_t n) {
    switch (ch) {
        case 1: return enc<NB, 1, DITHER>(y, d, ds, out, ch, n);
        case 2: return enc<NB, 2, DITHER>(y, d, ds, out, ch, n);
        default: return enc<NB, 0, DITHER>(y, d, ds, out, ch, n);
    }
}

template <bool DITHER, class In>
std::ptrdiff_t enc_nb(int nbytes, const In* y, const double* d, std::ptrdiff_t ds, uint8_t* out,
                      std::ptrdiff_t ch, std::ptrdiff_t n) {
    switch (nbytes) {
        case 2: return enc_ch<2, DITHER>(y, d, ds, out, ch, n);
        case 3: return enc_ch<3, DITHER>(y, d, ds, out, ch, n);
        default: return enc_ch<4, DITHER>(y, d, ds, out, ch, n);
    }
}

template <class In>
std::ptrdiff_t enc_any(int nbytes, const In* y, const double* d, std::ptrdiff_t ds, uint8_t* out,
                       std::ptrdiff_t ch, std::ptrdiff_t n) {
    return d ? enc_nb<true>(nbytes, y, d, ds, out, ch, n)
             : enc_nb<false>(nbytes, y, d, ds, out, ch, n);
}

std::ptrdiff_t wav_encode_pcm(const py::array& y, const py::object& dither, int nbytes,
                              py::array& out) {
    if (nbytes < 2 || nbytes > 4) throw std::invalid_argument("nbytes: expected 2, 3 or 4");
    if (y.ndim() != 2) throw std::invalid_argument("y: expected a 2-D array");
    std::ptrdiff_t ch = y.shape(0), n = y.shape(1);
    uint8_t* o = data_of<uint8_t>(out, "out", 1);
    if (out.shape(0) < ch * n * nbytes) throw std::invalid_argument("out: buffer too small");
    const double* d = nullptr;
    std::ptrdiff_t ds = 0;
    py::array darr;
    if (!dither.is_none()) {
        darr = py::reinterpret_borrow<py::array>(dither);
        d = cdata_of<double>(darr, "dither", 2);
        if (darr.shape(0) < n || darr.shape(1) < ch)
            throw std::invalid_argument("dither: expected shape (n, channels)");
        ds = darr.shape(1);
    }
    if (is_f32(y)) {
        const float* yp = cdata_of<float>(y, "y", 2);
        py::gil_scoped_release nogil;
        return enc_any(nbytes, yp, d, ds, o, ch, n);
    }
    const double* yp = cdata_of<double>(y, "y", 2);
    py::gil_scoped_release nogil;
    return enc_any(nbytes, yp, d, ds, o, ch, n);
}

}  // namespace

void register_wav(py::module_& m) {
    m.def("wav_decode", &wav_decode, py::arg("raw"), py::arg("kind"), py::arg("out"),
          "Decode interleaved little-endian samples: raw (bytes,) uint8, kind 0..4 = PCM 16, 24, "
          "32 bit, float32, float64 -> out (channels, frames) float32/float64 (libsndfile's "
          "values). GIL released.");
    m.def("wav_encode_pcm", &wav_encode_pcm, py::arg("y"), py::arg("dither"), py::arg("nbytes"),
          py::arg("out"),
          "Quantize y (channels, n) float32/float64 [+ dither (n, channels) float64 or None] to "
          "nbytes-byte little-endian PCM, frame-interleaved, into out (uint8); returns the "
          "number of clipped samples. GIL released.");
}

}  // namespace fx
