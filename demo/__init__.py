"""``silentgate demo``: a simulated store on this machine, end to end."""
