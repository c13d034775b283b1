"""marketing_signals engine: the tested Python behind the dbt package's Python models and tools."""

__version__ = "0.1.0"
