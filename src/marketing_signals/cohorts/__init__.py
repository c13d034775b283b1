"""Cohort engine: feature matrices from the long bucket table, the 9 Python cohort methods,
and the fit/score bridge the thin dbt Python models call (see docs/architecture.md)."""
