"""Packaging for pygrad; metadata lives here, tool settings in pyproject.toml."""

from setuptools import find_packages, setup

setup(
    name="pygrad",
    version="0.2.0",
    description="A define-by-run deep-learning framework with NumPy and OpenCL backends",
    packages=find_packages(include=["pygrad", "pygrad.*"]),
    package_data={"pygrad.data": ["_data/*"]},
    python_requires=">=3.9",
    install_requires=["numpy>=1.22"],
    extras_require={
        "opencl": ["pyopencl>=2022.1", "pocl-binary-distribution>=1.0"],
        "plot": ["graphviz>=0.20"],
        "dev": ["pytest>=7", "black>=24", "ruff>=0.4", "sphinx>=6", "graphviz>=0.20"],
    },
)
