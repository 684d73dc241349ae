"""portlens: find port misuse in network session logs."""

__version__ = "0.1.0"
