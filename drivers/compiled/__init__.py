"""Compiled loops: the one ``kernel`` decorator and how kernels run (``modes``), where builds
and caches live (``places``), the ahead-of-time extension (``extension``) and the probe for
memory that may be written and executed (``wx``).

It sits in ``drivers`` because the lowest layer declares kernels too (the ThingMagic stream
scan) and may import nothing above it; the gateway's kernels use the same decorator
(``gateway.stages.kernels.jit``), and ``gateway.service.build`` makes the build.
"""

from drivers.compiled.modes import Choice, Mode, choice, describe, kernel

__all__ = ["Choice", "Mode", "choice", "describe", "kernel"]
