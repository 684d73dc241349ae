"""portlens: find port misuse in network session logs.

From Python (see `portlens.api`)::

    import portlens
    with portlens.open_store("portlens.duckdb") as store:
        portlens.ingest(store, "logs/")
        result = portlens.detect(store)

The names below are loaded on first use, so `import portlens` stays cheap.
"""

__version__ = "0.1.0"

_EXPORTS = {
    "open_store": "api", "ingest": "api", "detect": "api", "backtest": "api", "hunt": "api",
    "load_config": "api", "forget": "api", "quarantined": "api",
    "Alert": "alerts", "AlertSeries": "alerts", "AlertWindow": "alerts", "Talker": "alerts",
    "Detection": "alerts",
    "PortlensError": "errors",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        from importlib import import_module
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'portlens' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
