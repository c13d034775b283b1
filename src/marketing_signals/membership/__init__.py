"""Cohort membership over time: calibration of raw membership confidence against whether the
membership still holds at the next recomputation (see `calibration`)."""
