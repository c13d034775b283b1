"""Demo data generator: raw sources and planted ground truth for every method (see generator.py)."""

from .generator import GENERATOR_VERSION, RAW_TABLES, generate

__all__ = ["GENERATOR_VERSION", "RAW_TABLES", "generate"]
