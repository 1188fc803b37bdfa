"""The daemon as a service: its lifecycle under systemd, supervision, logs, telemetry and
metrics."""
