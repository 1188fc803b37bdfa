"""The stages that turn reads into transitions: presence, shelf settling, fusion and
attribution, with their compiled kernels in ``kernels``."""
