"""Streams benchmark: Observe + Forecast on S streams x L locations x D days (default 30 x 200 x 730).

setup               = the demo generator's stream metrics with planted incidents, written as Parquet (not timed);
observe_forecast    = the engine as the dbt models run it (streams.pipeline.run): statsmodels ETS fits on
                      sampled series per stream, one vectorised robust pass over time for every series
                      (Observe, with the portfolio roll-ups), backtests of ETS and seasonal naive at 4
                      origins, model choice and 28-day forecasts with intervals;
statsmodels_loop    = the baseline: a per-series loop of statsmodels ETSModel fit (the same model and
                      the same heuristic start values as observe_forecast's fits) + 28-day forecast
                      with 80% intervals, on `loop_series` series picked at random (all of them with
                      --loop-series 0). Its per-series time x the number of series is the loop's cost
                      for the whole panel, reported next to the measured step. The loop does less
                      than observe_forecast (no robust pass, no detection, no backtests).
Each step is a child process (wall time and its own peak RSS).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from marketing_signals.bench.harness import measure, report

SETUP = r"""
import sys, numpy as np, pyarrow.parquet as pq
from marketing_signals.demo import streams as S
S_, L, D, seed, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
reg = S.load_registries()
keep = {s["stream_id"] for s in reg.streams[:S_]}
reg = S.Registries(reg.streams[:S_], reg.causes, [g for g in reg.signatures if g["stream_id"] in keep])
reg = S.Registries(reg.streams, [c for c in reg.causes if any(g["cause_id"] == c["cause_id"] for g in reg.signatures)],
                   reg.signatures)
inc = S.plan_incidents(np.random.default_rng(seed), reg, L, D)
w = np.random.default_rng(seed + 1).dirichlet(np.ones(L) * 5)
t = S.stream_metrics(np.random.default_rng(seed + 2), reg, w, np.datetime64("2024-01-01"), D, inc)
pq.write_table(t, out)
print(t.num_rows, "rows")
"""

RUN = r"""
import sys, json, time, pandas as pd
from marketing_signals.streams import panel as PN, pipeline as PL
data, reg_csv, out = sys.argv[1], sys.argv[2], sys.argv[3]
t0 = time.perf_counter()
m = pd.read_parquet(data)
m["stream_id"] = m["stream_id"].astype(str); m["location_id"] = m["location_id"].astype(str)
p = PN.build_panel(m, pd.read_csv(reg_csv))
t1 = time.perf_counter()
r = PL.run(p, with_observations=True)
t2 = time.perf_counter()
json.dump({"series": int(p.n), "days": int(p.y.shape[1]), "anomaly_windows": int(len(r.anomalies)),
           "forecast_rows": int(len(r.forecasts)), "observation_rows": int(len(r.observations)),
           "load_seconds": t1 - t0, "engine_seconds": t2 - t1, **r.timings,
           "models": r.models["model"].value_counts().to_dict()}, open(out, "w"))
"""

LOOP = r"""
import sys, json, time, warnings, numpy as np, pandas as pd
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from marketing_signals.streams import panel as PN
data, reg_csv, k, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
warnings.simplefilter("ignore")
m = pd.read_parquet(data)
m["stream_id"] = m["stream_id"].astype(str); m["location_id"] = m["location_id"].astype(str)
p = PN.build_panel(m, pd.read_csv(reg_csv))
rows = np.random.default_rng(0).permutation(p.n)[: (k or p.n)]
t0 = time.perf_counter()
for i in rows:
    s = pd.Series(p.y[i], index=p.days).interpolate(limit_direction="both")
    res = ETSModel(s, error="add", trend="add", damped_trend=True, seasonal="add", seasonal_periods=7,
                   initialization_method="heuristic").fit(disp=False)
    res.get_prediction(start=len(s), end=len(s) + 27).summary_frame(alpha=0.2)
dt = time.perf_counter() - t0
json.dump({"series_measured": int(len(rows)), "series_total": int(p.n), "seconds": dt,
           "seconds_per_series": dt / len(rows)}, open(out, "w"))
"""


def run(project: Path, work: Path, streams: int = 30, locations: int = 200, days: int = 730,
        seed: int = 42, loop_series: int = 300) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    data = work / f"streams_{streams}x{locations}x{days}.parquet"
    reg = project / "seeds" / "registry_streams.csv"
    py = sys.executable
    rows = [measure("setup (generate, not compared)", [py, "-c", SETUP, str(streams), str(locations), str(days),
                                                       str(seed), str(data)])]
    run_json, loop_json = work / "streams_run.json", work / "streams_loop.json"
    rows.append(measure("observe_forecast", [py, "-c", RUN, str(data), str(reg), str(run_json)]))
    rows.append(measure(f"statsmodels_loop ({loop_series or 'all'} series)",
                        [py, "-c", LOOP, str(data), str(reg), str(loop_series), str(loop_json)]))
    r = json.loads(run_json.read_text())
    lp = json.loads(loop_json.read_text())
    loop_full = lp["seconds_per_series"] * lp["series_total"]
    rows[1].detail = (f"{r['series']:,} series x {r['days']} days: {r['anomaly_windows']:,} anomaly windows, "
                      f"{r['forecast_rows']:,} forecast rows; fit {r['fit_seconds']:.1f} s, observe "
                      f"{r['observe_seconds']:.1f} s, backtest+forecast {r['forecast_seconds']:.1f} s")
    rows[2].detail = (f"{lp['seconds_per_series']:.3f} s per series -> {loop_full:,.0f} s for all "
                      f"{lp['series_total']:,} series ({loop_full / rows[1].wall_s:,.0f}x observe_forecast)")
    extra = {"streams": streams, "locations": locations, "days": days, "engine": r, "loop": lp,
             "loop_all_series_seconds": loop_full,
             "speedup_vs_per_series_loop": loop_full / rows[1].wall_s,
             "observe_forecast_budget_seconds": 120, "within_budget": rows[1].wall_s <= 120}
    result = report("streams", streams * locations, rows, baseline="observe_forecast", extra=extra)
    print(f"per-series statsmodels loop for all {lp['series_total']:,} series: {loop_full:,.0f} s "
          f"= {loop_full / rows[1].wall_s:,.1f}x observe_forecast ({rows[1].wall_s:.1f} s; budget 120 s)")
    return result
