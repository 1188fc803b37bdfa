"""The MQTT contract's shared pieces, for the uplink and the commands, rules and config that
read what arrives: topic names, bounded parsing of hostile payloads, rate limits."""
