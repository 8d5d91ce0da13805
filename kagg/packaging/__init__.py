"""Building artifacts: the runtime module, the providers' entry shims and the deterministic zip."""
