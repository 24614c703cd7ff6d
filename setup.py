"""Builds the one compiled part, the fused top-k kernel (recsys_lib/search/_fused_scan.cpp).

Everything else is declared in pyproject.toml. The kernel is optional: without a C++ compiler the
install still succeeds and the export runs its tensor path (slower on CPU, same results).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "recsys_lib.search._fused_scan",
            sources=["recsys_lib/search/_fused_scan.cpp"],
            language="c++",
            # no FMA contraction: exact rescoring gives the same bits on every CPU (see rescore)
            extra_compile_args=["-O3", "-std=c++17", "-fopenmp", "-ffp-contract=off"],
            extra_link_args=["-fopenmp"],
            optional=True,
        )
    ]
)
