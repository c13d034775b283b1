"""End to end: `dbt build` of the cohort stage on generated data whose planted truth (personas,
funnels, referral communities) each method must recover, plus the cohort contracts, the
data-sufficiency gate and the fit/score split (a second build reuses the fitted models).

The builds stop before the emission stage (compliance decisions, feeds, attestation): the
refresh project of test_membership_dbt / test_emission_dbt builds and tests that stage on a
smaller population, and building it here on 20,000 customers cost CI minutes for no added check.
"""
from __future__ import annotations

import json

import pytest

from conftest import EMISSION_STAGE, DbtProject, generate_demo

pytestmark = pytest.mark.dbt

CUSTOMERS = 20_000
ALL_METHODS = 13
WINDOWS = ("24h", "7d", "28d", "90d", "365d", "lifetime")


@pytest.fixture(scope="module")
def cohort_project(tmp_path_factory) -> DbtProject:
    data = generate_demo(tmp_path_factory.mktemp("cohort_demo"), customers=CUSTOMERS, seed=11)
    root = tmp_path_factory.mktemp("cohort_build")
    project = DbtProject(root, data / "raw", root / "cohorts.duckdb", truth_dir=data / "truth",
                         vars='{"marketing_signals__cohort_fit_sample": 20000, '
                              '"marketing_signals__streams_enabled": false}')
    project.dbt("build", "--exclude", *EMISSION_STAGE)
    return project


def _metric(project: DbtProject, method: str, window: str, metric: str) -> float:
    rows = project.query(f"select value from {project.relation('cohort_quality')} "
                         "where method_id = ? and window_id = ? and metric = ?", [method, window, metric])
    assert rows, f"no {metric} for {method} × {window} in cohort_quality"
    return rows[0][0]


def test_every_method_window_is_assigned_or_explained(cohort_project):
    cov = cohort_project.query(
        f"select method_id, window_id, status, reason, assigned_customers from {cohort_project.relation('cohort_coverage')}")
    assert len(cov) == ALL_METHODS * len(WINDOWS)
    for method, window, status, reason, assigned in cov:
        assert status in ("assigned", "not_computed")
        if status == "assigned":
            assert assigned > 0
        else:
            assert reason, f"{method} × {window} has neither assignments nor a reason"
    long_windows = [(m, w) for m, w, s, _, _ in cov if w in ("365d", "lifetime") and s != "assigned"]
    assert long_windows == [], f"365d/lifetime without assignments: {long_windows}"


def test_clustering_recovers_planted_personas(cohort_project):
    for method in ("kmeans", "gaussian_mixture", "hierarchical"):
        ari = _metric(cohort_project, method, "lifetime", "ari_vs_planted_persona")
        assert ari >= 0.8, f"{method}: ARI {ari:.3f} against planted personas"


def test_graph_clustering_recovers_planted_communities(cohort_project):
    ari = _metric(cohort_project, "graph_clustering", "lifetime", "ari_vs_planted_communities")
    assert ari >= 0.8, f"graph clustering: ARI {ari:.3f} against planted communities"


def test_funnel_stages_equal_the_generator(cohort_project):
    share = _metric(cohort_project, "funnel", "lifetime", "exact_match_vs_planted_funnel")
    assert share == 1.0, f"funnel: {share:.4%} of customers match the planted stage"


def test_intent_predicts_the_held_out_week(cohort_project):
    auc = _metric(cohort_project, "intent", "lifetime", "auc_holdout")
    assert auc >= 0.75, f"intent: AUC {auc:.3f} on the held-out week"


def test_survival_risk_bands_are_monotone_in_realised_lapse(cohort_project):
    shares = [_metric(cohort_project, "survival", "lifetime", f"lapse_share_{b}")
              for b in ("low", "medium", "high", "very_high")]
    assert all(a < b for a, b in zip(shares, shares[1:])), f"realised lapse by band {shares}"


def test_assignment_contract(cohort_project):
    rel = cohort_project.relation("cohort_assignments")
    bad = cohort_project.query(
        f"select count(*) from {rel} where confidence < 0 or confidence > 1 or confidence is null "
        "or cohort_id is null or cohort_label is null or model_version is null or as_of is null")[0][0]
    assert bad == 0
    dupes = cohort_project.query(
        f"select count(*) from (select customer_key, method_id, window_id from {rel} group by all having count(*) > 1)")[0][0]
    assert dupes == 0
    for (attribution,) in cohort_project.query(f"select source_attribution from {rel} using sample 500 rows"):
        parsed = json.loads(attribution)
        for key in ("signal_types", "source_systems"):
            weights = parsed[key]
            assert weights and abs(sum(weights.values()) - 1) < 1e-3, attribution


def test_unassigned_customers_carry_a_reason(cohort_project):
    rows = cohort_project.query(
        f"select count(*), count(unassigned_reason) from {cohort_project.relation('cohort_unassigned')}")[0]
    assert rows[0] == rows[1]


def test_rebuild_reuses_fitted_models_and_changes_nothing(cohort_project, tmp_path):
    project = cohort_project.copy(tmp_path / "rebuild")

    def snapshot():
        fits = project.query(f"select count(*), max(fitted_at) from {project.relation('cohort_model_fits')}")[0]
        digest = project.query(
            f"select count(*), sum(hash(customer_key || method_id || window_id || cohort_id || "
            f"cast(round(confidence, 9) as varchar) || model_version)) from {project.relation('cohort_assignments')}")[0]
        return fits, digest

    before = snapshot()
    project.dbt("build", "--exclude", "resource_type:test", "resource_type:unit_test", *EMISSION_STAGE)
    assert snapshot() == before


def test_forced_refit_appends_a_new_model_version(cohort_project, tmp_path):
    project = cohort_project.copy(tmp_path / "refit")
    fits = project.relation("cohort_fit_kmeans")
    before = project.query(f"select count(*) from {fits} where status = 'fitted'")[0][0]
    # a small fitting sample: this test is about versioning, not fit quality (CI time)
    project.vars = ('{"marketing_signals__cohort_force_refit": true, "marketing_signals__cohort_fit_sample": 5000, '
                    '"marketing_signals__streams_enabled": false}')
    project.dbt("run", "--select", "cohort_fit_kmeans")
    after = project.query(f"select count(*) from {fits} where status = 'fitted'")[0][0]
    assert after == 2 * before
