"""The command-line tools besides ``run``: tail, send, doctor and the generated reference."""
