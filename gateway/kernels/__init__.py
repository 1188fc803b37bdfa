"""Compiled hot paths (numba, ``cache=True``), each with a plain-Python twin in ``twin``."""
