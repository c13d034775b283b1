"""End to end: subscriber feeds, the compliance overlay, the outbox and the attestation ledger.

Shares the 3,000-customer `refresh_project` build with the membership tests (conftest.py).

- The 8 feeds are non-empty, every row's attestation is in the ledger, and the ledger verifies
  with the public key only (`marketing-signals verify`).
- Customers who objected to direct marketing (GDPR / UK GDPR Art. 21(2)) are excluded before
  cohorts: no bucket, no assignment, no feed row.
- Negative tests: with the inputs broken so that every rule's condition holds, every rule's
  compliance_rule_holds test fails (one dbt test run per vertical).
- Re-running adds no outbox event and no attestation; builds killed at several points and
  re-run leave no duplicate and no gap.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DBT, REPO, DbtProject

pytestmark = pytest.mark.dbt

FEEDS = ["offer_optimizer", "journey_orchestrator", "communication_broadcast", "loyalty",
         "measurement_attribution", "local_context", "local_sem", "page_generator"]
RULES = [row["rule_id"] for row in csv.DictReader(open(REPO / "seeds" / "registry_compliance_rules.csv"))]
VERTICALS = ["retail", "financial_services", "healthcare", "age_restricted"]


def _count(project: DbtProject, relation: str, where: str = "true") -> int:
    return project.query(f"select count(*) from {project.relation(relation)} where {where}")[0][0]


def _verify(project: DbtProject) -> subprocess.CompletedProcess:
    cli = str(Path(sys.executable).with_name("marketing-signals"))
    return subprocess.run([cli, "verify", "--duckdb", str(project.db_path), "--worm-dir", str(project.worm_dir)],
                          capture_output=True, text=True)


def _assert_consistent(project: DbtProject) -> None:
    """No duplicates, no gaps: decisions, outbox, ledger and feeds agree, and the ledger verifies."""
    rel = project.relation
    q = project.query
    ledger, outbox, decisions = rel("attestation_ledger"), rel("emission_outbox"), rel("emission_decisions")
    n, lo, hi, distinct = q(f"select count(*), min(sequence_no), max(sequence_no), count(distinct attestation_id) from {ledger}")[0]
    assert (lo, hi, distinct) == (1, n, n), f"ledger sequence 1..{n} expected, got {lo}..{hi} with {distinct} distinct ids"
    assert q(f"select count(*) - count(distinct idempotency_key) from {outbox}")[0][0] == 0, "duplicate outbox events"
    assert q(f"select count(*) - count(distinct decision_id) from {decisions}")[0][0] == 0, "duplicate decisions"
    missing_events = q(f"select count(*) from {decisions} where op <> 'none' and decision_id not in (select idempotency_key from {outbox})")[0][0]
    stray_events = q(f"select count(*) from {outbox} where idempotency_key not in (select decision_id from {decisions} where op <> 'none')")[0][0]
    unattested = q(f"select count(*) from {decisions} where decision_id not in (select attestation_id from {ledger})")[0][0]
    assert (missing_events, stray_events, unattested) == (0, 0, 0), \
        f"decisions without outbox event {missing_events}, outbox events without decision {stray_events}, unattested decisions {unattested}"
    transitions = rel("cohort_transitions")
    unattested_transitions = q(f"""select count(*) from {transitions} t where sha256('membership_transition|' || t.customer_key || '|'
        || t.method_id || '|' || t.window_id || '|' || cast(t.transition_at as varchar)) not in (select attestation_id from {ledger})""")[0][0]
    assert unattested_transitions == 0, f"{unattested_transitions} transitions without attestation"
    # the decision log reflects what subscribers should hold now: no missed change
    desired = rel("emission_desired")
    stale = q(f"""
        with latest as (
            select subscriber_id, feed_key, held_after, state_digest,
                   row_number() over (partition by subscriber_id, feed_key order by decided_at desc, recorded_at desc) as r
            from {decisions})
        select count(*) from {desired} d
        full outer join (select * from latest where r = 1 and (held_after or state_digest <> 'absent')) l
          on l.subscriber_id = d.subscriber_id and l.feed_key = d.feed_key
        where l.feed_key is null or d.feed_key is null and l.state_digest <> 'absent'
           or d.state_digest <> l.state_digest""")[0][0]
    assert stale == 0, f"{stale} feed keys whose latest decision does not match what the subscriber should hold"
    for subscriber in FEEDS:
        feed = rel(f"feed_{subscriber}")
        unattested_rows = q(f"select count(*) from {feed} where attestation_id not in (select attestation_id from {ledger})")[0][0]
        assert unattested_rows == 0, f"feed_{subscriber}: {unattested_rows} rows without attestation"
    result = _verify(project)
    assert result.returncode == 0, f"verify failed:\n{result.stdout}\n{result.stderr}"


def test_feeds_are_filled_attested_and_verify(refresh_project):
    for subscriber in FEEDS:
        assert _count(refresh_project, f"feed_{subscriber}", "op <> 'exit'") > 0, f"feed_{subscriber} is empty"
    for subscriber in ("local_context", "local_sem"):
        assert _count(refresh_project, f"feed_{subscriber}", "home_location_id is null") == 0
    holdout = refresh_project.query(f"select avg(case when is_holdout then 1.0 else 0 end) from {refresh_project.relation('feed_offer_optimizer')}")[0][0]
    assert 0.05 < holdout < 0.15, f"offer_optimizer holdout share {holdout:.3f}, registry says 0.10"
    assert _count(refresh_project, "compliance_violations") == 0
    _assert_consistent(refresh_project)
    exposures = refresh_project.dbt("ls", "--resource-type", "exposure", "--quiet").stdout.split()
    assert len(exposures) >= 9, exposures


def test_objectors_are_excluded_before_cohorts(refresh_project):
    rel, q = refresh_project.relation, refresh_project.query
    objectors = q(f"select count(*) from {rel('compliance_cohort_exclusions')} where rule_id in ('GDPR_ART21_DM_OBJECTION', 'UK_GDPR_ART21_DM_OBJECTION')")[0][0]
    assert objectors > 0, "the generator plants EU/UK consent withdrawals; none was excluded"
    excluded = f"(select customer_key from {rel('compliance_cohort_exclusions')})"
    assert q(f"select count(*) from {rel('cohort_signal_buckets')} where customer_key in {excluded}")[0][0] == 0
    assert q(f"select count(*) from {rel('cohort_assignments')} where customer_key in {excluded}")[0][0] == 0
    assert q(f"select count(*) from {rel('emission_feed_rows')} where op <> 'exit' and customer_key in {excluded}")[0][0] == 0
    # opted out of profiling (CCPA ADMT / Colorado) or no Art. 22 exception: absent from the significant feeds
    opted_out = q(f"""select count(*) from {rel('emission_feed_rows')} f
        join {rel('customer_privacy_profile')} p using (customer_key)
        where f.op <> 'exit' and f.subscriber_id in ('offer_optimizer', 'loyalty')
          and p.jurisdiction in ('US-CA', 'US-CO') and p.profiling_consent = 'withdrawn'""")[0][0]
    assert opted_out == 0


def test_rerun_adds_no_outbox_events_and_no_attestations(refresh_project):
    tables = ["emission_outbox", "attestation_ledger", "attestation_checkpoints", "emission_decisions"]
    before = {t: _count(refresh_project, t) for t in tables}
    refresh_project.dbt("run")
    after = {t: _count(refresh_project, t) for t in tables}
    assert after == before


def _break_everything(project: DbtProject) -> None:
    """Make every rule's condition hold for one customer with live feed rows in every feed, and
    let excluded sources reach the buckets: the overlay is bypassed, as a bug or a hand edit would."""
    import duckdb
    names = {t: project.relation(t) for t in ("emission_feed_rows", "customer_privacy_profile", "registry_subscribers",
                                               "registry_decision_safeguards", "cohort_signal_buckets",
                                               "compliance_exceptions")}
    rel = names.__getitem__
    con = duckdb.connect(str(project.db_path))
    try:
        victims = [r[0] for r in con.sql(f"""select customer_key from {rel('emission_feed_rows')} where op <> 'exit'
            group by 1 having count(distinct subscriber_id) = (select count(distinct subscriber_id) from {rel('emission_feed_rows')})
            order by 1 limit 5""").fetchall()]
        assert victims, "no customer in every feed"
        jurisdictions = ["EU", "UK", "US-CA", "US-CO", "US-OTHER"]
        for customer, jurisdiction in zip(victims, jurisdictions):
            con.execute(f"""update {rel('customer_privacy_profile')} set jurisdiction = ?, marketing_consent = 'withdrawn',
                profiling_consent = 'withdrawn', sale_share_consent = 'withdrawn', glba_sharing_consent = 'withdrawn',
                glba_notice_at = null, age_verified = false, objected_to_direct_marketing = true,
                has_unreviewed_enrichment = true where customer_key = ?""", [jurisdiction, customer])
        # every subscriber significant and an ad platform; no safeguards recorded
        con.execute(f"update {rel('registry_subscribers')} set decision_significance = 'similarly_significant', destination_kind = 'ad_platform'")
        con.execute(f"delete from {rel('registry_decision_safeguards')}")
        # an exception without a written justification
        con.execute(f"""insert into {rel('compliance_exceptions')} values ('EX-1', 'FCRA_THIRD_PARTY_ENRICHMENT', null, null,
            'ok', 'counsel', timestamp '2026-11-01', null)""")
        for source in ("credit_bureau_attributes", "pharmacy_app_sdk"):
            con.execute(f"""insert into {rel('cohort_signal_buckets')} by name
                select customer_key, signal_type, channel, ? as source_system, category, time_bucket, event_count,
                       amount_sum, first_occurred_at, last_occurred_at
                from {rel('cohort_signal_buckets')} where customer_key = ? limit 1""", [source, victims[0]])
    finally:
        con.close()


def _failed_tests(project: DbtProject, vertical: str) -> set[str]:
    """Rebuild the violation checks for `vertical` and run their tests; the ids of failing tests."""
    broken = DbtProject(project.root, project.raw_dir, project.db_path,
                        json.dumps(json.loads(project.vars) | {"marketing_signals__vertical": vertical}))
    broken.dbt("build", "--select", "compliance_violations", check=False)
    results = json.loads((project.root / "target" / "run_results.json").read_text())["results"]
    errors = [r["unique_id"] for r in results if r["status"] == "error"]
    assert not errors, f"errors (not failures) in {errors}"
    return {r["unique_id"] for r in results if r["status"] == "fail"}


def test_every_compliance_rule_fails_when_broken(refresh_project, tmp_path):
    # the untouched build passed every rule (the fixture's dbt build ran these tests)
    project = refresh_project.copy(tmp_path / "broken")
    _break_everything(project)
    failed: set[str] = set()
    for vertical in VERTICALS[1:]:  # rules for all verticals are checked under each of these
        failed |= _failed_tests(project, vertical)
    not_caught = [rule for rule in RULES if not any(uid.endswith(f"_{rule}") or f"_{rule}." in uid for uid in failed)]
    assert not not_caught, f"rules whose check did not fail although broken: {not_caught}"
    unjustified = project.dbt("test", "--select", "compliance_exceptions_justified", check=False)
    assert unjustified.returncode != 0 and "Got 1 result" in unjustified.stdout, "an unjustified exception passed"


# ----------------------------------------------------------------------------- kill and rerun
# after the decisions are appended but before the outbox; after the ledger but before its seal
KILL_AT = ["emission_outbox", "attestation_checkpoints"]
# the stage after membership: a change of safeguards re-decides every offer_optimizer row for
# EU/UK/CA/CO customers without re-running capture and cohorts (CI time)
STAGE = ["--select", "compliance_evaluations+", "--exclude", "cohort_refresh_log"]


def _run_and_kill(project: DbtProject, model: str) -> bool:
    """Start `dbt run` of the stage; SIGKILL its process group as soon as `model` starts."""
    cmd = [DBT, "run", *STAGE, "--project-dir", str(REPO), "--target-path", str(project.root / "target"),
           "--log-path", str(project.root / "logs"), "--vars", project.vars]
    proc = subprocess.Popen(cmd, env=project.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    killed = False
    for line in proc.stdout:
        if " START " in line and f".{model} " in line:
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            break
    proc.wait()
    return killed


def _set_review_path(project: DbtProject, present: bool) -> None:
    import duckdb
    table = project.relation("registry_decision_safeguards")
    con = duckdb.connect(str(project.db_path))
    try:
        con.execute(f"delete from {table} where subscriber_id = 'offer_optimizer' and field_name = 'human_review_path'")
        if present:
            con.execute(f"insert into {table} values ('offer_optimizer', 'human_review_path', 'restored review path')")
    finally:
        con.close()


def test_killed_builds_rerun_without_duplicates_or_gaps(refresh_project, tmp_path):
    project = refresh_project.copy(tmp_path / "killed")
    outbox_before = _count(project, "emission_outbox")
    for model, review_path in zip(KILL_AT, (False, True)):
        # without a human-review path, significant offer decisions are held for counsel (exits);
        # restored, they enter again
        _set_review_path(project, review_path)
        assert _run_and_kill(project, model), f"dbt never started {model}"
        project.dbt("run", *STAGE)
        _assert_consistent(project)
        outbox_now = _count(project, "emission_outbox")
        assert outbox_now > outbox_before, "the changed safeguard should have produced events"
        outbox_before = outbox_now
