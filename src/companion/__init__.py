"""companion: the library behind the book.

Floors (a floor imports only the floors below it):

1. primitives: ``runtime``, ``boxes``, ``results``
2. infrastructure: ``data``, ``train``, ``viz``
3. toolkits: ``ssl``, ``quant``, ``slimmable``, ``compress``
4. papers: one package per paper (``tobias``, ``psol``, ``s3l``, ``nrs``, ``fewshot``,
   ``ssql``, ``us3l``, ``effssl``, ``vit2040``, ``efpc``)
"""

import os as _os
import platform as _platform

__version__ = "0.1.0"

#: CPU kernels pinned to the AVX2 instruction set (ATen, oneDNN, MKL): an AVX-512 machine otherwise
#: takes other kernels, whose float rounding (and int8 saturation) differs, and the recorded numbers
#: would repeat only on machines of one kind. Set before torch runs its first operation; an explicit
#: setting in the environment wins. The Makefile sets the same for every notebook and study.
CPU_ISA_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}
if _platform.machine().lower() in ("x86_64", "amd64"):
    for _key, _value in CPU_ISA_ENV.items():
        _os.environ.setdefault(_key, _value)
