"""Compiled hot paths (``drivers.compiled``: built ahead of time, numba's JIT, or plain Python),
each with a plain-Python twin in ``twin``; ``build`` makes the ahead-of-time build."""
