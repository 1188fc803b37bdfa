"""The public events: their models, the factory that builds them from the stages' output,
their ids and the pseudonyms that keep people's tags private."""
