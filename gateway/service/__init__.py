"""The daemon as a service: its assembly and lifecycle under systemd, the kernels' build and
warm-up, and the metrics endpoint."""
