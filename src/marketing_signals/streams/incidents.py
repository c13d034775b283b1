"""Incidents: anomaly windows grouped across streams and locations.

Two anomaly windows belong to the same incident when their onsets are at most `link_days`
apart and they share a location, or they are on the same stream (the pattern of a
portfolio-wide cause: one stream moving at many locations at once). Incidents are the
connected components of that graph (scipy.sparse.csgraph). Portfolio series (location 'ALL')
join the incident of the same stream's location windows; alone they form their own.

An incident's onset (`incident_onset`): per location, the earliest onset among the incident's
*strong* members there (score at least `strong_share` x the incident's highest score, or at
least `strong_floor` = 2, twice the alarm threshold: a clear alarm is strong even beside a
much larger one, as a root symptom often is beside a lagged revenue drop); across locations,
the lower median. A weak member, or one location whose onset estimate drifted,
does not pull the incident's onset with it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .panel import PORTFOLIO


STRONG_FLOOR = 2.0


def incident_onset(members: pd.DataFrame, key: str = "incident", onset: str = "onset",
                   strong_share: float = 0.5, strong_floor: float = STRONG_FLOOR) -> pd.Series:
    """members: key, location_id, anomaly_score, onset -> onset per key (see module doc)."""
    peak = members.groupby(key)["anomaly_score"].transform("max")
    strong = members[members["anomaly_score"] >= np.minimum(strong_share * peak, strong_floor)]
    per_loc = strong.groupby([key, "location_id"])[onset].min().reset_index()
    return per_loc.groupby(key)[onset].apply(lambda s: s.sort_values().iloc[(len(s) - 1) // 2])


def group(anoms: pd.DataFrame, link_days: int = 3, strong_share: float = 0.5) -> tuple[pd.Series, pd.DataFrame]:
    """anoms: stream_id, location_id, onset (int day), end, anomaly_score.

    Returns (incident number per anomaly row, one row per incident)."""
    n = len(anoms)
    if n == 0:
        return pd.Series([], dtype=np.int64), pd.DataFrame(columns=[
            "incident", "onset", "end", "n_anomalies", "n_streams", "n_locations", "scope", "peak_score",
            "lead_stream_id", "streams", "locations"])
    a = anoms.reset_index(drop=True)
    onset = a["onset"].to_numpy()
    pairs = []
    for key in ("location_id", "stream_id"):
        # within each key, sort by onset and link neighbours within link_days (a sweep, not n^2);
        # portfolio series do not share a "location": they link through their stream only
        for value, idx in a.groupby(key, sort=False).indices.items():
            if key == "location_id" and value == PORTFOLIO:
                continue
            idx = idx[np.argsort(onset[idx], kind="stable")]
            o = onset[idx]
            # link each window to every later window within link_days
            hi = np.searchsorted(o, o + link_days, side="right")
            span = hi - np.arange(idx.size) - 1
            src = np.repeat(np.arange(idx.size), span)
            dst = src + 1 + (np.arange(span.sum()) - np.repeat(np.cumsum(span) - span, span))
            pairs.append(np.column_stack([idx[src], idx[dst]]))
    e = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
    g = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    _, label = connected_components(g, directed=False)
    # renumber incidents by onset
    first = pd.Series(onset).groupby(label).min()
    order = np.lexsort((first.index.to_numpy(), first.to_numpy()))
    renum = np.empty(len(first), np.int64)
    renum[first.index.to_numpy()[order]] = np.arange(len(first))
    inc = renum[label]
    a["incident"] = inc
    peak = a.groupby("incident")["anomaly_score"].transform("max")
    strong = a[a["anomaly_score"] >= np.minimum(strong_share * peak, STRONG_FLOOR)]
    lead = strong.sort_values(["incident", "onset", "anomaly_score"], ascending=[True, True, False]).drop_duplicates("incident")
    loc = a[a["location_id"] != PORTFOLIO]
    out = pd.DataFrame({
        "incident": np.arange(len(first)),
        "onset": incident_onset(a, strong_share=strong_share),
        "end": a.groupby("incident")["end"].max(),
        "n_anomalies": a.groupby("incident").size(),
        "n_streams": a.groupby("incident")["stream_id"].nunique(),
        "n_locations": loc.groupby("incident")["location_id"].nunique().reindex(np.arange(len(first)), fill_value=0),
        "peak_score": a.groupby("incident")["anomaly_score"].max(),
        "lead_stream_id": lead.set_index("incident")["stream_id"],
        "streams": a.groupby("incident")["stream_id"].agg(lambda s: sorted(set(s))),
        "locations": loc.groupby("incident")["location_id"].agg(lambda s: sorted(set(s))).reindex(np.arange(len(first))),
    })
    out["locations"] = out["locations"].apply(lambda v: v if isinstance(v, list) else [])
    out["scope"] = np.where(out["n_locations"] > 1, "portfolio", "location")
    return pd.Series(inc, name="incident"), out.reset_index(drop=True)
