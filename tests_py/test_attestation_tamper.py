"""Tamper detection: 3 sealed batches, then >= 200 random tamperings of copies of the two tables; the
verifier (given only the genuine public key) must reject every one of them."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from marketing_signals.attestation import (
    CHECKPOINT_COLUMNS,
    GENESIS_HASH,
    LEDGER_COLUMNS,
    chain,
    checkpoint_payload,
    content_hash,
    last_checkpoint,
    ledger_tail,
    load_signer,
    merkle_root,
    record_hash,
    seal,
    verify,
)
from marketing_signals.attestation.frames import to_arrow
from marketing_signals.attestation.keys import ENV_SIGNING_KEY
from marketing_signals.attestation.schema import CHECKPOINT_SCHEMA, CONTENT_COLUMNS, LEDGER_SCHEMA
from marketing_signals.attestation.synthetic import synthetic_candidates

BATCH_SIZES = (120, 80, 100)
GENUINE_SEED = hashlib.sha256(b"genuine signing key (test)").hexdigest()
ATTACKER_SEED = hashlib.sha256(b"attacker signing key (test)").hexdigest()


@dataclass
class Sealed:
    records: list[dict]      # ledger rows as Python values, sequence order
    checkpoints: list[dict]
    candidates: list[pd.DataFrame]
    worm: Path
    public_key: object
    root: Path
    signer: object  # only the "insider" category uses the genuine private key


def _build(root: Path, candidates: list[pd.DataFrame], signer, worm: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    ledgers, cps, prev_cp, tail = [], [], None, (0, None)
    for cand in candidates:
        rows = chain(cand, last_sequence_no=tail[0], last_record_hash=tail[1])
        cp = seal(rows, previous_checkpoint=prev_cp, worm_dir=worm, signer=signer)
        ledgers.append(rows)
        cps.append(cp)
        tail, prev_cp = ledger_tail(rows), last_checkpoint(cp)
    return pd.concat(ledgers, ignore_index=True), pd.concat(cps, ignore_index=True)


@pytest.fixture(scope="module")
def sealed(tmp_path_factory) -> Sealed:
    root = tmp_path_factory.mktemp("attestation")
    signer = load_signer(root / "keys", environ={ENV_SIGNING_KEY: GENUINE_SEED})
    candidates = [synthetic_candidates(n, seed=100 + i, start=f"2026-10-0{i + 1}", run_id=f"run-{i}",
                                       id_prefix=f"r{i}") for i, n in enumerate(BATCH_SIZES)]
    worm = root / "worm"
    ledger, cps = _build(root, candidates, signer, worm)
    return Sealed(to_arrow(ledger, LEDGER_SCHEMA).to_pylist(), to_arrow(cps, CHECKPOINT_SCHEMA).to_pylist(),
                  candidates, worm, signer.public_key, root, signer)


def _verify(s: Sealed, records: list[dict], cps: list[dict], worm: Path | None = None):
    return verify(pd.DataFrame(records, columns=LEDGER_COLUMNS), pd.DataFrame(cps, columns=CHECKPOINT_COLUMNS),
                  worm or s.worm, s.public_key)


def test_untampered_ledger_verifies(sealed):
    r = _verify(sealed, sealed.records, sealed.checkpoints)
    assert r.ok, r.errors
    assert r.stats == {"records": 300, "batches": 3, "checkpoints": 3}
    assert [c["record_count"] for c in sealed.checkpoints] == list(BATCH_SIZES)


def test_first_error_names_the_edited_record(sealed):
    recs = _copy(sealed.records)
    recs[149]["decision"] = "forged"
    r = _verify(sealed, recs, sealed.checkpoints)
    assert not r.ok
    assert r.first_error.startswith(f"record 150 ({recs[149]['attestation_id']}): content_hash")


# ----------------------------------------------------------------------------- tampering helpers
def _copy(rows: list[dict]) -> list[dict]:
    return [dict(r) for r in rows]  # values are immutable (str, int, float, datetime, date, None)


def _changed(col: str, v, rng: random.Random):
    """A value for `col` whose canonical form differs from v."""
    if col in ("sequence_no",):
        return v + rng.choice([1, -1, 1000])
    if col == "confidence":
        return 0.5 if v is None else v + rng.choice([0.001, -0.25, 1.0])
    if col == "decided_at":
        return v + dt.timedelta(seconds=rng.randint(1, 3600))
    if col == "retention_until":
        return v + dt.timedelta(days=rng.choice([-1, 1, 365]))
    if col.endswith("_json"):
        obj = {} if v is None else json.loads(v)
        obj["forged"] = rng.choice([True, 1, "yes", 0.5])
        return json.dumps(obj)
    if col in ("content_hash", "prev_hash", "record_hash"):
        return hashlib.sha256(f"{v}{rng.random()}".encode()).hexdigest()
    if v is None:
        return rng.choice(["forged", "insert", "R99"])
    return v + rng.choice(["x", "0", " ", "|R99"])


def _rehash(recs: list[dict], i: int) -> None:
    recs[i]["content_hash"] = content_hash(recs[i])
    recs[i]["record_hash"] = record_hash(recs[i]["prev_hash"], recs[i]["content_hash"])


def _rechain(recs: list[dict], start: int) -> None:
    """What an attacker with write access does: rebuild every hash from `start` on."""
    for j in range(max(start, 0), len(recs)):
        recs[j]["prev_hash"] = recs[j - 1]["record_hash"] if j else GENESIS_HASH
        _rehash(recs, j)


def _batch_bounds(s: Sealed) -> list[tuple[int, int]]:
    return [(c["first_sequence_no"] - 1, c["last_sequence_no"]) for c in s.checkpoints]


def _resign(cp: dict, signer) -> None:
    payload = checkpoint_payload(cp)
    cp["checkpoint_hash"] = hashlib.sha256(payload).hexdigest()
    cp["signature"] = signer.sign(payload)


def _tamperings(s: Sealed, rng: random.Random, attacker, scratch: Path):
    """Yield (category, description, records, checkpoints, worm_dir)."""
    n = len(s.records)
    content_cols = list(CONTENT_COLUMNS)

    for k in range(25):
        recs, i = _copy(s.records), rng.randrange(n)
        col = rng.choice(content_cols + ["content_hash", "prev_hash", "record_hash"])
        recs[i][col] = _changed(col, recs[i][col], rng)
        yield "edit field", f"{col}@{i + 1}", recs, s.checkpoints, None

    for k in range(25):
        recs, i = _copy(s.records), rng.randrange(n)
        col = rng.choice(content_cols)
        recs[i][col] = _changed(col, recs[i][col], rng)
        _rehash(recs, i)
        yield "edit + rehash record", f"{col}@{i + 1}", recs, s.checkpoints, None

    for k in range(25):
        recs, i = _copy(s.records), rng.randrange(n)
        col = rng.choice([c for c in content_cols if c not in ("sequence_no", "batch_id")])
        recs[i][col] = _changed(col, recs[i][col], rng)
        _rechain(recs, i)
        yield "edit + rebuild rest of chain", f"{col}@{i + 1}", recs, s.checkpoints, None

    for k in range(25):
        recs, i = _copy(s.records), rng.randrange(1, n - 1)
        del recs[i]
        if k % 2:  # attacker renumbers and rebuilds the chain after the hole
            for j in range(i, len(recs)):
                recs[j]["sequence_no"] -= 1
            _rechain(recs, i)
        yield "delete middle row", f"@{i + 1}{' renumbered' if k % 2 else ''}", recs, s.checkpoints, None

    for k in range(25):
        recs, cps, variant = _copy(s.records), _copy(s.checkpoints), k % 3
        if variant == 0:  # drop the newest rows only
            m = rng.randint(1, 15)
            recs = recs[:-m]
        elif variant == 1:  # drop the newest rows and shrink the last checkpoint to match (re-signed by attacker)
            m = rng.randint(1, 15)
            recs = recs[:-m]
            cps[-1].update(last_sequence_no=recs[-1]["sequence_no"], record_count=cps[-1]["record_count"] - m,
                           last_record_hash=recs[-1]["record_hash"],
                           merkle_root=merkle_root([r["record_hash"] for r in recs[cps[-1]["first_sequence_no"] - 1:]]))
            _resign(cps[-1], attacker)
        else:  # truncate whole sealed batches together with their checkpoints
            m = rng.choice([1, 2])
            lo = _batch_bounds(s)[-m][0]
            recs, cps = recs[:lo], cps[:-m]
        yield "delete newest rows", f"variant {variant}", recs, cps, None

    for k in range(25):
        recs, variant = _copy(s.records), k % 3
        i = rng.randrange(1, n)
        forged = dict(recs[i], attestation_id=f"forged-{k}", decision="include", subject_digest="f" * 64)
        if variant == 0:  # slipped in at position i, everything after renumbered and rechained
            forged["sequence_no"] = recs[i]["sequence_no"]
            recs.insert(i, forged)
            for j in range(i + 1, len(recs)):
                recs[j]["sequence_no"] += 1
            _rechain(recs, i)
        elif variant == 1:  # same sequence_no as an existing record, linked to its predecessor
            forged["prev_hash"] = recs[i - 1]["record_hash"]
            recs.insert(i, forged)
            _rehash(recs, i)
        else:  # appended after the newest record with a valid link
            forged.update(sequence_no=n + 1, prev_hash=recs[-1]["record_hash"])
            recs.append(forged)
            _rehash(recs, len(recs) - 1)
        yield "insert forged row", f"variant {variant} @{i + 1}", recs, s.checkpoints, None

    for k in range(25):
        recs, variant = _copy(s.records), k % 3
        i, j = sorted(rng.sample(range(n), 2))
        if variant == 0:  # swap sequence numbers
            recs[i]["sequence_no"], recs[j]["sequence_no"] = recs[j]["sequence_no"], recs[i]["sequence_no"]
        else:  # swap positions: each record takes the other's place in the order
            a, b = dict(recs[i]), dict(recs[j])
            recs[i] = dict(b, sequence_no=a["sequence_no"])
            recs[j] = dict(a, sequence_no=b["sequence_no"])
            if variant == 2:
                _rechain(recs, i)
        yield "reorder two rows", f"variant {variant} {i + 1}<->{j + 1}", recs, s.checkpoints, None

    for k in range(20):
        # The attacker rebuilds everything from genesis and re-seals with their own key and WORM folder.
        cands = [c.copy() for c in s.candidates]
        b = rng.randrange(len(cands))
        if k % 4:
            r = rng.randrange(len(cands[b]))
            cands[b].loc[r, "decision"] = "forged"
        worm = scratch / f"attacker-{k}"
        ledger, cps = _build(worm, cands, attacker, worm)
        cps_l = to_arrow(cps, CHECKPOINT_SCHEMA).to_pylist()
        if k % 2:  # and writes the genuine key's fingerprint into the checkpoints
            prev = GENESIS_HASH
            for cp in cps_l:
                cp.update(key_fingerprint=s.checkpoints[0]["key_fingerprint"], prev_checkpoint_hash=prev)
                _resign(cp, attacker)
                prev = cp["checkpoint_hash"]
        yield ("re-seal with attacker key", f"{'edited' if k % 4 else 'unchanged'} fp={'genuine' if k % 2 else 'own'}",
               to_arrow(ledger, LEDGER_SCHEMA).to_pylist(), cps_l, worm)

    for k in range(10):
        # An insider holding the genuine signing key edits a record, rebuilds and re-signs everything and
        # points the checkpoints at the genuine WORM files' hashes: only the write-once copies disagree.
        cands = [c.copy() for c in s.candidates]
        b = rng.randrange(len(cands))
        cands[b].loc[rng.randrange(len(cands[b])), "decision"] = "forged"
        ledger, cps = _build(scratch, cands, s.signer, scratch / f"insider-{k}")
        cps_l = to_arrow(cps, CHECKPOINT_SCHEMA).to_pylist()
        prev = GENESIS_HASH
        for cp, genuine in zip(cps_l, s.checkpoints):
            cp.update(worm_sha256=genuine["worm_sha256"], prev_checkpoint_hash=prev)
            _resign(cp, s.signer)
            prev = cp["checkpoint_hash"]
        yield "insider re-sign, WORM intact", f"batch {b + 1}", to_arrow(ledger, LEDGER_SCHEMA).to_pylist(), cps_l, None

    for k in range(20):
        cps, c = _copy(s.checkpoints), rng.randrange(len(s.checkpoints))
        cps[c]["merkle_root"] = hashlib.sha256(f"fake root {k}".encode()).hexdigest()
        if k % 2:
            cps[c]["checkpoint_hash"] = hashlib.sha256(checkpoint_payload(cps[c])).hexdigest()
        yield "edit checkpoint merkle_root", f"cp {c + 1}{' + rehash' if k % 2 else ''}", s.records, cps, None

    for k in range(15):
        cps, c, variant = _copy(s.checkpoints), k % len(s.checkpoints), (k // 3) % 2
        del cps[c]
        if variant:  # renumber and relink what is left, re-signed by the attacker
            prev = GENESIS_HASH
            for no, cp in enumerate(cps, start=1):
                cp.update(checkpoint_no=no, prev_checkpoint_hash=prev)
                _resign(cp, attacker)
                prev = cp["checkpoint_hash"]
        yield "drop a checkpoint", f"cp {c + 1}{' relinked' if variant else ''}", s.records, cps, None


def test_every_tampering_is_detected(sealed, tmp_path, capsys):
    attacker = load_signer(tmp_path / "attacker-keys", environ={ENV_SIGNING_KEY: ATTACKER_SEED})
    rng = random.Random(20261128)
    total, detected, missed = Counter(), Counter(), []
    for category, what, recs, cps, worm in _tamperings(sealed, rng, attacker, tmp_path):
        assert recs != sealed.records or cps != sealed.checkpoints, (category, what)
        r = _verify(sealed, recs, cps, worm)
        total[category] += 1
        if not r.ok:
            detected[category] += 1
            assert r.first_error and r.errors[0] == r.first_error and len(r.errors) <= 50
        else:
            missed.append(f"{category}: {what}")
    with capsys.disabled():
        print(f"\n{'tampering category':<32}{'applied':>9}{'detected':>10}")
        for c in total:
            print(f"{c:<32}{total[c]:>9}{detected[c]:>10}")
        print(f"{'total':<32}{sum(total.values()):>9}{sum(detected.values()):>10}")
    assert sum(total.values()) >= 200 and len(total) == 11
    assert not missed, missed
    # the genuine tables still verify after all the copies were tampered with
    assert _verify(sealed, sealed.records, sealed.checkpoints).ok


def test_streaming_verifier_finds_the_same_first_error(sealed, tmp_path):
    """verify_duckdb streams (verify_stream); on every tampering it must reject and name the same first
    finding as the in-memory verifier."""
    import duckdb

    from marketing_signals.attestation.verify import verify_stream

    attacker = load_signer(tmp_path / "attacker-keys", environ={ENV_SIGNING_KEY: ATTACKER_SEED})
    rng = random.Random(20261128)
    checked, same = 0, 0
    differ = []
    for category, what, recs, cps, worm in _tamperings(sealed, rng, attacker, tmp_path):
        frame = pd.DataFrame(recs, columns=LEDGER_COLUMNS)
        try:
            table = to_arrow(frame, LEDGER_SCHEMA)
        except (ValueError, TypeError):
            continue  # unreadable as typed columns: a DuckDB table could not hold it either
        expected = _verify(sealed, recs, cps, worm)
        con = duckdb.connect()
        con.register("t", table)
        con.execute("create table ledger as select * from t")
        got = verify_stream(con, "ledger", pd.DataFrame(cps, columns=CHECKPOINT_COLUMNS), worm or sealed.worm,
                            sealed.public_key, rows=64)
        con.close()
        checked += 1
        assert not got.ok, f"{category}: {what}"
        if got.first_error == expected.first_error:
            same += 1
        else:
            differ.append((category, what, expected.first_error, got.first_error))
    assert checked >= 200
    assert not differ, differ[:5]
    con = duckdb.connect()
    con.register("t", to_arrow(pd.DataFrame(sealed.records, columns=LEDGER_COLUMNS), LEDGER_SCHEMA))
    con.execute("create table ledger as select * from t")
    r = verify_stream(con, "ledger", pd.DataFrame(sealed.checkpoints, columns=CHECKPOINT_COLUMNS), sealed.worm,
                      sealed.public_key, rows=37)
    assert r.ok, r.errors
    assert r.stats == {"records": 300, "batches": 3, "checkpoints": 3}
