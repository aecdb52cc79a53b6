"""Facts about this machine, each read and parsed in one place and cached: kernel symbols,
config, version, CPUs, mounts, tracefs, capabilities, architecture."""
