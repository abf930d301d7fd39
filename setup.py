"""Builds fxcli's compiled CPU core, the extension module ``fxcli._core`` (C++17,
pybind11), from ``csrc/``; everything else is in pyproject.toml.

Flags: -O3 and -ffp-contract=off (a product and a sum are never fused into one
FMA: the kernels' results are operation for operation SciPy's), never
-ffast-math and never -march=native; the IIR tiles carry an AVX2 clone chosen at
load time (see csrc/common.hpp), the FIR's FFT loop an AVX2 build of its own
(csrc/fir_avx2.cpp); csrc/third_party/pocketfft is vendored (BSD-3, header-only).
FXCLI_CORE_DEBUG=1 builds with -O0 -g.
"""

import os
import sys
from glob import glob

from pybind11.setup_helpers import Pybind11Extension, ParallelCompile, build_ext
from setuptools import setup

ParallelCompile("FXCLI_BUILD_JOBS", default=0).install()

if sys.platform == "win32":
    flags = ["/O2", "/fp:precise"]
else:
    debug = os.environ.get("FXCLI_CORE_DEBUG") == "1"
    flags = ["-O0", "-g"] if debug else ["-O3"]
    flags += ["-ffp-contract=off", "-fno-math-errno", "-Wall", "-Wno-psabi"]

ext = Pybind11Extension(
    "fxcli._core",
    sorted(glob("csrc/*.cpp")),
    include_dirs=["csrc"],
    cxx_std=17,
    extra_compile_args=flags,
)
ext.depends = sorted(glob("csrc/*.hpp") + glob("csrc/third_party/*/*.h"))

setup(ext_modules=[ext], cmdclass={"build_ext": build_ext})
