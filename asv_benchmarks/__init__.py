"""fastnn's asv suite: every kernel timed with the backend (numba, numpy) as a parameter.

Run it from the repository root with ``asv run --python=same --quick``; see
``asv.conf.json`` and the README's performance section.
"""
