"""PetShop root-cause benchmark (Hardt et al. 2023, amazon-science/petshop-root-cause-analysis).

The dataset stays outside the repository. Its folder is, in order: the `root` argument, the
environment variable MARKETING_SIGNALS_PETSHOP_DIR, or ../shared/datasets/petshop/dataset next
to the repository. Per scenario (`SCENARIOS`) it holds `graph.csv` (the call graph: row =
caller, column = callee, 1 = calls), `train/` and `test/` with `issue_*/metrics.csv` (3 header
rows microservice / metric / statistic, index unix_timestamp, 5-minute rows) and
`issue_*/target.json` (`root_cause.node` is the truth, `target.timestamp` the time the alarm
on the target fired), and for low/high traffic only `noissue/metrics.csv` (two days of normal
operation, recorded months after the issues).

Protocol (`evaluate_petshop`):

* Every issue holds 5 rows (20 minutes), so its own history cannot serve as a reference. The
  **reference** of an issue is the pooled pre-alarm rows of the other issues of its scenario:
  the rows whose 5-minute bucket ends at or before that issue's alarm (one per issue in this
  release: 25 rows for low / high traffic, 7 for the temporal scenarios). They are normal
  operation of the same deployment in the same weeks, and exist for all four scenarios. `noissue`
  exists for two scenarios only and was recorded months later (August / September 2023 against
  April 2023); a few nodes sit at other levels there (the servi-petsi load balancer, the
  lambda_step functions), so every issue "shows" them and both rankers degrade
  (`reference="noissue"` runs it, as a check; scenarios without `noissue` keep pre_alarm).
* **Onset** = the issue's first row whose bucket contains or follows the alarm (row 1 in
  every issue); the issue's rows before it are pre-onset data too.
* Both rankers get exactly the same input: the issue's 5 rows of every (node, metric,
  statistic) column with a finite value (240-278 series) as `values`, the onset row, and
  the reference rows as `reference` (`localise.baro_scores(..., reference=)`,
  `localise.localise(..., reference=)`): the robust scale is fitted on reference + pre-onset
  rows.
* **Nodes**: a node's score is the max over its series; nodes are ranked by it (ties: first
  column order). A node without a scorable series is ranked last.
* Rankers: `baro` (`localise.baro_scores`), `ours` (`localise.localise` with the call graph
  as the structural prior: a callee can drive its callers, so the causal adjacency is the
  transposed call graph; groups = nodes), `ours_no_graph` (the same without the graph).
* Metrics per scenario and overall over all issues (train + test: 68): AC@k = share of issues
  whose root node is in the top k; AVG@5 = mean of AC@1..AC@5. Nothing is trained, so the
  train / test split is only reported per issue.

    marketing-signals petshop-eval [--root DIR] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import localise as L

ENV_DIR = "MARKETING_SIGNALS_PETSHOP_DIR"
DEFAULT_PETSHOP_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "datasets" / "petshop" / "dataset"
SCENARIOS = ("low_traffic", "high_traffic", "temporal_traffic1", "temporal_traffic2")
RANKERS = ("ours", "ours_no_graph", "baro")
BUCKET_SECONDS = 300
REPORT_COLUMNS = ["scenario", "ranker", "issues", "ac1", "ac3", "avg5"]


def petshop_dir(root: Path | str | None = None) -> Path:
    """The dataset folder: `root`, else $MARKETING_SIGNALS_PETSHOP_DIR, else the default next to the repo."""
    if root is not None:
        return Path(root)
    env = os.environ.get(ENV_DIR)
    return Path(env) if env else DEFAULT_PETSHOP_DIR


# ----------------------------------------------------------------------------- loading
@dataclass
class Issue:
    scenario: str
    split: str
    name: str
    metrics: pd.DataFrame          # index unix seconds, columns MultiIndex (node, metric, statistic)
    target: dict

    @property
    def root_cause(self) -> str:
        return self.target["root_cause"]["node"]

    @property
    def alarm(self) -> float:
        return float(self.target["target"]["timestamp"])

    @property
    def onset_row(self) -> int:
        """First row whose 5-minute bucket contains or follows the alarm."""
        ends = self.metrics.index.to_numpy(dtype=np.float64) + BUCKET_SECONDS
        return int(np.searchsorted(ends, self.alarm, side="right"))


@dataclass
class Scenario:
    name: str
    graph: pd.DataFrame            # call graph: row = caller, column = callee
    issues: list[Issue] = field(default_factory=list)
    normal: pd.DataFrame | None = None

    @property
    def columns(self) -> pd.MultiIndex:
        """Union of the issues' columns, in first-seen order."""
        seen = dict.fromkeys(c for issue in self.issues for c in issue.metrics.columns)
        return pd.MultiIndex.from_tuples(list(seen), names=["node", "metric", "statistic"])


def read_metrics(path: Path) -> pd.DataFrame:
    """metrics.csv as one float64 block: index unix seconds, columns (node, metric, statistic)."""
    df = pd.read_csv(path, header=[0, 1, 2], index_col=0)
    cols = pd.MultiIndex.from_tuples([tuple(str(v) for v in c) for c in df.columns],
                                     names=["node", "metric", "statistic"])
    out = pd.DataFrame(df.to_numpy(dtype=np.float64), index=df.index.to_numpy(dtype=np.float64), columns=cols)
    return out.sort_index()


def load_scenario(root: Path | str, name: str) -> Scenario:
    base = Path(root) / name
    graph = pd.read_csv(base / "graph.csv", index_col=0)
    sc = Scenario(name=name, graph=graph)
    if (base / "noissue" / "metrics.csv").is_file():
        sc.normal = read_metrics(base / "noissue" / "metrics.csv")
    for split in ("train", "test"):
        folder = base / split
        if not folder.is_dir():
            continue
        names = sorted((p.name for p in folder.iterdir() if p.name.startswith("issue_")),
                       key=lambda s: int(s.split("_")[1]) if s.split("_")[1].isdigit() else s)
        for issue in names:
            d = folder / issue
            with open(d / "target.json") as f:
                target = json.load(f)
            sc.issues.append(Issue(name, split, issue, read_metrics(d / "metrics.csv"), target))
    return sc


# ----------------------------------------------------------------------------- one issue
def pre_alarm_rows(issue: Issue) -> pd.DataFrame:
    return issue.metrics.iloc[:issue.onset_row]


def reference_for(scenario: Scenario, issue: Issue, reference: str = "pre_alarm") -> pd.DataFrame:
    """Normal rows for `issue` (its own pre-onset rows are added by `issue_input`)."""
    if reference == "noissue" and scenario.normal is not None:
        return scenario.normal
    if reference not in ("pre_alarm", "noissue"):
        raise ValueError(f"unknown reference {reference!r}")
    parts = [pre_alarm_rows(o) for o in scenario.issues if o is not issue]
    if not parts:
        return issue.metrics.iloc[:0]
    cols = scenario.columns
    rows = [p.reindex(columns=cols).to_numpy(dtype=np.float64) for p in parts]
    index = np.concatenate([p.index.to_numpy(dtype=np.float64) for p in parts])
    return pd.DataFrame(np.concatenate(rows, axis=0), index=index, columns=cols)


def issue_input(scenario: Scenario, issue: Issue, reference: str = "pre_alarm", onset_shift: int = 0):
    """(values (N, 5), reference (N, R), onset, series labels, node per series); see the module doc.

    `onset_shift` moves the onset by whole rows (clamped to the issue), for sensitivity checks.
    """
    m = issue.metrics
    arr = m.to_numpy(dtype=np.float64)
    keep = np.isfinite(arr).any(axis=0)
    cols = list(m.columns[keep])
    ref = reference_for(scenario, issue, reference)
    pos = ref.columns.get_indexer(m.columns[keep])
    ref_arr = ref.to_numpy(dtype=np.float64)
    ref_vals = np.where(pos[None, :] >= 0, ref_arr[:, np.maximum(pos, 0)], np.nan) if ref_arr.size else \
        np.empty((0, len(cols)))
    values = arr[:, keep].T
    onset = int(min(max(issue.onset_row + onset_shift, 0), values.shape[1] - 1))
    names = ["/".join(c) for c in cols]
    nodes = [c[0] for c in cols]
    return values, ref_vals.T, onset, names, nodes


def causal_graph(call_graph: pd.DataFrame) -> pd.DataFrame:
    """Driver -> driven adjacency: a callee can drive its callers (the transposed call graph)."""
    return call_graph.T


def node_ranking(scores: np.ndarray, nodes: list[str]) -> list[str]:
    """Nodes by their best series score, best first (ties: first appearance)."""
    s = pd.Series(np.where(np.isfinite(scores), scores, -np.inf), index=nodes)
    best = s.groupby(level=0, sort=False).max()
    order = np.lexsort((np.arange(len(best)), -best.to_numpy()))
    return list(best.index[order])


def rank_issue(scenario: Scenario, issue: Issue, reference: str = "pre_alarm", onset_shift: int = 0,
               config: L.LocaliseConfig = L.LocaliseConfig()) -> dict[str, list[str]]:
    """Node rankings of one issue by each ranker in `RANKERS`."""
    values, ref, onset, names, nodes = issue_input(scenario, issue, reference, onset_shift)
    out = {"baro": node_ranking(L.baro_scores(values, onset, reference=ref), nodes)}
    for ranker, graph in (("ours", causal_graph(scenario.graph)), ("ours_no_graph", None)):
        res = L.localise(values, onset, names=names, groups=nodes, graph=graph, reference=ref, config=config)
        by_name = res.set_index("name")["score"]
        out[ranker] = node_ranking(by_name.loc[names].to_numpy(), nodes)
    return out


# ----------------------------------------------------------------------------- evaluation
def _position(ranking: list[str], truth: str) -> int:
    return ranking.index(truth) + 1 if truth in ranking else len(ranking) + 1


def evaluate_issues(root: Path | str | None = None, log=print, *, reference: str = "pre_alarm",
                    onset_shift: int = 0, config: L.LocaliseConfig = L.LocaliseConfig()) -> pd.DataFrame:
    """One row per issue x ranker: scenario, split, issue, target metric, truth, position (1 = top), top3."""
    root = petshop_dir(root)
    rows = []
    for name in SCENARIOS:
        sc = load_scenario(root, name)
        for issue in sc.issues:
            rankings = rank_issue(sc, issue, reference, onset_shift, config)
            for ranker in RANKERS:
                r = rankings[ranker]
                rows.append({"scenario": name, "split": issue.split, "issue": issue.name,
                             "metric": issue.target["target"]["metric"], "ranker": ranker,
                             "truth": issue.root_cause, "position": _position(r, issue.root_cause),
                             "top3": r[:3]})
        if log:
            got = pd.DataFrame([r for r in rows if r["scenario"] == name])
            msg = ", ".join(f"{k} AC@1 {(got[got.ranker == k].position == 1).mean():.2f}" for k in RANKERS)
            log(f"{name}: {len(sc.issues)} issues; {msg}")
    return pd.DataFrame(rows)


def summarise(per_issue: pd.DataFrame) -> pd.DataFrame:
    """Per scenario and overall x ranker: issues, AC@1, AC@3, AVG@5."""
    out = []
    groups = [(s, per_issue[per_issue.scenario == s]) for s in SCENARIOS if (per_issue.scenario == s).any()]
    groups.append(("overall", per_issue))
    for scen, df in groups:
        for ranker in RANKERS:
            pos = df.loc[df.ranker == ranker, "position"].to_numpy()
            if pos.size == 0:
                continue
            ac = [(pos <= k).mean() for k in range(1, 6)]
            out.append({"scenario": scen, "ranker": ranker, "issues": int(pos.size), "ac1": ac[0], "ac3": ac[2],
                        "avg5": float(np.mean(ac))})
    return pd.DataFrame(out, columns=REPORT_COLUMNS)


def evaluate_petshop(root: Path | str | None = None, log=print, *, reference: str = "pre_alarm",
                     onset_shift: int = 0, config: L.LocaliseConfig = L.LocaliseConfig()) -> pd.DataFrame:
    """The report: one row per (scenario or 'overall') x ranker with issues, ac1, ac3, avg5.

    The per-issue table (`evaluate_issues`) is in `report.attrs["per_issue"]`.
    """
    per_issue = evaluate_issues(root, log, reference=reference, onset_shift=onset_shift, config=config)
    report = summarise(per_issue)
    report.attrs["per_issue"] = per_issue
    return report


def wide_table(report: pd.DataFrame) -> pd.DataFrame:
    """scenario x (ranker, metric) side by side."""
    wide = report.pivot(index="scenario", columns="ranker", values=["ac1", "ac3", "avg5"]).swaplevel(axis=1)
    order = [(r, k) for r in RANKERS for k in ("ac1", "ac3", "avg5") if (r, k) in wide.columns]
    rows = [s for s in (*SCENARIOS, "overall") if s in wide.index]
    wide = wide.loc[rows, order]
    wide.insert(0, ("issues", ""), report.drop_duplicates("scenario").set_index("scenario").loc[rows, "issues"])
    return wide


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Our root-stream ranker vs BARO on the PetShop root-cause benchmark.")
    ap.add_argument("--root", type=Path, default=None,
                    help=f"PetShop dataset folder (default ${ENV_DIR}, else {DEFAULT_PETSHOP_DIR})")
    ap.add_argument("--json", type=Path, default=None, help="also write the report (and per-issue ranks) as JSON")
    ap.add_argument("--reference", choices=("pre_alarm", "noissue"), default="pre_alarm",
                    help="normal rows: other issues' pre-alarm rows (default) or noissue/ where it exists")
    args = ap.parse_args(argv)
    root = petshop_dir(args.root)
    if not all((root / s / "graph.csv").is_file() for s in SCENARIOS):
        print(f"PetShop data not found: {root} lacks <scenario>/graph.csv for {', '.join(SCENARIOS)} "
              f"(pass --root or set {ENV_DIR})", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    report = evaluate_petshop(root, log=lambda msg: print(msg, file=sys.stderr), reference=args.reference)
    elapsed = time.perf_counter() - t0
    with pd.option_context("display.width", 200):
        print(wide_table(report).to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"{int(report.loc[report.scenario == 'overall', 'issues'].iloc[0])} issues in {elapsed:.1f}s")
    if args.json:
        per_issue = report.attrs["per_issue"]
        payload = {"reference": args.reference, "report": report.to_dict(orient="records"),
                   "per_issue": per_issue.to_dict(orient="records")}
        args.json.write_text(json.dumps(payload, indent=2, default=str))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
