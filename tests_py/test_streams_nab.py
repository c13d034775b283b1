"""Observe vs the z-score baseline on two small NAB files (real data from shared/datasets/nab).

The data lives outside the repository (../shared/datasets/nab, never copied in). Without it the
test is skipped with the reason, like the Online Retail example; set MARKETING_SIGNALS_REQUIRE_NAB=1
to make a missing folder a failure instead. A fresh clone beside `shared` runs it (checked).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from marketing_signals.streams import nab

REPO = Path(__file__).resolve().parents[1]
CANDIDATES = (Path("/work/shared/datasets/nab"), REPO.parent / "shared" / "datasets" / "nab")
FILES = ["realAdExchange/exchange-2_cpc_results.csv", "realKnownCause/rogue_agent_key_hold.csv"]


def _nab_root() -> Path:
    for root in CANDIDATES:
        if (root / "labels" / "combined_windows.json").is_file() and all((root / f).is_file() for f in FILES):
            return root
    where = " or ".join(str(c) for c in CANDIDATES)
    msg = f"NAB data not found at {where} (needs labels/combined_windows.json and {', '.join(FILES)})"
    if os.environ.get("MARKETING_SIGNALS_REQUIRE_NAB") == "1":
        pytest.fail(f"{msg}; MARKETING_SIGNALS_REQUIRE_NAB=1 requires it", pytrace=False)
    pytest.skip(msg)


def test_evaluate_nab_two_files():
    root = _nab_root()
    res = nab.evaluate_nab(root, files=FILES, log=None)

    assert set(res.columns) >= {"file", "detector", "labels", "detections", "recall", "precision", "f1",
                                "n_points", "seconds"}
    assert len(res) == 2 * len(FILES)
    for f in FILES:
        assert set(res.loc[res["file"] == f, "detector"]) == {"observe", "zscore_baseline"}
    for col in ("recall", "precision", "f1"):
        assert res[col].between(0.0, 1.0).all(), res[["file", "detector", col]]
    assert (res["labels"] > 0).all() and (res["n_points"] > 1000).all()

    obs = res[res["detector"] == "observe"].set_index("file")
    for f in FILES:  # observe hits at least one labelled window in each file
        assert obs.loc[f, "recall"] > 0, obs.loc[f]
        assert obs.loc[f, "detections"] >= 1


def test_season_and_transform():
    import numpy as np
    import pandas as pd

    five_min = pd.Series(pd.date_range("2014-01-01", periods=100, freq="5min"))
    hourly = pd.Series(pd.date_range("2014-01-01", periods=100, freq="h"))
    assert nab.season_length(five_min) == 288
    assert nab.season_length(hourly) == 24
    assert nab.season_length(pd.Series(pd.date_range("2014-01-01", periods=100, freq="min"))) == nab.SEASON_CAP
    assert np.allclose(nab.transform(np.array([0.0, 1.0])), np.log([1.0, 2.0]))
    assert np.allclose(nab.transform(np.array([2.0, 4.0])), np.log([2.0, 4.0]))
