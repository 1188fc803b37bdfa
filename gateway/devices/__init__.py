"""Device sessions: the I/O side of each driver. A session opens its port, brings the device up,
and turns what it reports into reads (``DeviceContext.emit_read``) until it fails or is cancelled;
the daemon supervises it and reopens it with backoff."""
