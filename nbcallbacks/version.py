"""The package version (one place; ``nbcallbacks.__version__`` and the sinks' session records read it)."""

__version__ = "0.1.0"
