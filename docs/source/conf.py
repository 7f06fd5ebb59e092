"""Sphinx configuration of the pygrad documentation: ``sphinx-build docs/source docs/build``."""

import importlib.util
import os
import sys

# Document the source tree next to this folder, whether or not pygrad is installed.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

import pygrad  # noqa: E402

project = "pygrad"
author = "the pygrad developers"
copyright = "2026, the pygrad developers"
release = pygrad.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

# NumPy-style docstrings only.
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
# The OpenCL pages import PyOpenCL; stand in for it where it is not installed.
autodoc_mock_imports = [] if importlib.util.find_spec("pyopencl") else ["pyopencl"]

templates_path = []
exclude_patterns = []
html_theme = "alabaster"
html_static_path = ["_static"]
html_theme_options = {
    "description": "define-by-run deep learning on NumPy and OpenCL",
    "fixed_sidebar": True,
}
