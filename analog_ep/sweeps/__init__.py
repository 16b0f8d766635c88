"""Sweeps: a TOML file naming a base training configuration and axes, expanded into cells
(:mod:`.spec`) and run as ordinary training runs, on ``dask.distributed`` or one by one
(:mod:`.engine`)."""
