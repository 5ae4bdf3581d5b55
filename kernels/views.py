"""The buffer layout of :mod:`fastnn.layout`, compiled for use inside kernels.

These are the very functions the reference uses, compiled by Numba, so the
two backends cannot disagree about where a layer lives.
"""

from numba import njit

from fastnn import layout

weight_view = njit(inline="always")(layout.weight_view)
bias_view = njit(inline="always")(layout.bias_view)
workspace_block = njit(inline="always")(layout.workspace_block)
