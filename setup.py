"""Packaging for pygrad; metadata lives here, tool settings in pyproject.toml."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent

OPENCL = ["pyopencl>=2022.1", "pocl-binary-distribution>=1.0"]
PLOT = ["graphviz>=0.20"]
# Formatters and linters are pinned to one release line so that `black --check` and
# `ruff check` give the same verdict on every machine and in CI.
LINT = ["black>=26.1,<27", "ruff>=0.17,<0.18"]
# The test suite runs every function on OpenCL through PoCL (a CPU OpenCL platform), so
# the OpenCL extra is part of the development set.
DEV = ["pytest>=7", "sphinx>=7", *LINT, *PLOT, *OPENCL]

setup(
    name="pygrad",
    version="0.2.0",
    description="A define-by-run deep-learning framework with NumPy and OpenCL backends",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    packages=find_packages(include=["pygrad", "pygrad.*"]),
    package_data={"pygrad.data": ["_data/*"]},
    python_requires=">=3.9",
    install_requires=["numpy>=1.22"],
    extras_require={"opencl": OPENCL, "plot": PLOT, "lint": LINT, "dev": DEV},
    keywords=[
        "deep learning",
        "autograd",
        "automatic differentiation",
        "neural networks",
        "opencl",
    ],
    classifiers=[
        "Development Status :: 3 - Alpha",
        "Intended Audience :: Developers",
        "Intended Audience :: Education",
        "Intended Audience :: Science/Research",
        "Operating System :: OS Independent",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.9",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Topic :: Scientific/Engineering :: Mathematics",
        "Topic :: Software Development :: Libraries :: Python Modules",
    ],
)
