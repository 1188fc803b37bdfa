"""The central side of silentgate: what a store chain's server runs against the gateways' MQTT
stream (docs/consumers.md).

``consumer`` lands every event exactly once in a database (``store``: SQLite or PostgreSQL),
``losswatch`` reports what never arrived, ``funnel`` and ``report`` turn the events into a
store's customer funnel. It shares with the daemon only leaves that carry no daemon state (the
bounded JSON parser, the log throttle, log setup); the contract between the two is the MQTT
topics and payloads of docs/contract.md.
"""
