"""What every part of the daemon runs on: log lines and their rate limits, supervision with
backoff, and the word to systemd. Imports nothing else of the gateway."""
