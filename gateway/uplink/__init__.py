"""The MQTT side: the broker session that empties the outbox, topics, inbound commands and
requests, and the retained status and info."""
