// fxcli._core: the compiled CPU kernels. One file per kernel family; each
// defines register_<name>(module) and is listed here.
#include "common.hpp"

namespace fx {
void register_iir(py::module_& m);
void register_dynamics(py::module_& m);
void register_fir(py::module_& m);
void register_iir_adjoint(py::module_& m);
void register_iir_tv(py::module_& m);
void register_loudness(py::module_& m);
void register_memory(py::module_& m);
void register_reverb(py::module_& m);
void register_truepeak(py::module_& m);
void register_wav(py::module_& m);
void register_writeback(py::module_& m);
}  // namespace fx

PYBIND11_MODULE(_core, m) {
    m.doc() = "fxcli's compiled CPU kernels (numpy arrays in and out, GIL released)";
    m.attr("LANES") = fx::LANES;
    fx::register_iir(m);
    fx::register_dynamics(m);
    fx::register_fir(m);
    fx::register_iir_adjoint(m);
    fx::register_iir_tv(m);
    fx::register_loudness(m);
    fx::register_memory(m);
    fx::register_reverb(m);
    fx::register_truepeak(m);
    fx::register_wav(m);
    fx::register_writeback(m);
}
