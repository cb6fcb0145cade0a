"""Application layer: front ends built on the registry and the executors (the command line: :mod:`ottex.app.cli`)."""
