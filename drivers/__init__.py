"""Sans-I/O protocol code for the devices silentgate speaks to.

Bytes in, frames out; commands in, bytes out. Nothing here reads a clock, opens a port or
awaits anything, except ``transport.py``, which is the single module that does I/O.
"""
