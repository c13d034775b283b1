"""Attestation engine: canonical encoding, chaining, RFC 6962 Merkle trees, WORM files, keys, seal/verify."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import os
import random
import stat
import unicodedata
from decimal import ROUND_HALF_EVEN, Context, Decimal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from marketing_signals.attestation import (
    CANDIDATE_COLUMNS,
    CHECKPOINT_COLUMNS,
    GENESIS_HASH,
    LEDGER_COLUMNS,
    AttestationKeyError,
    SealError,
    WormError,
    audit_path,
    canonical_bytes,
    chain,
    content_hash,
    content_hashes,
    last_checkpoint,
    ledger_tail,
    load_public_key,
    load_signer,
    merkle_root,
    record_hash,
    seal,
    verify,
    verify_duckdb,
    verify_inclusion,
    write_batch,
)
from marketing_signals.attestation.canonical import _fast_fixed, fixed_decimal
from marketing_signals.attestation.schema import LEDGER_SCHEMA
from marketing_signals.attestation.keys import DEMO_KEY_FILE, ENV_SIGNING_KEY, ENV_SIGNING_KEY_FILE, fingerprint
from marketing_signals.attestation.synthetic import synthetic_candidates
from marketing_signals.cli import main as cli_main

NFD_E = "e\u0301"  # 'e' + combining acute: NFC is U+00E9
NFC_E = "\u00e9"


def _record(**over) -> dict:
    rec = {c: None for c in CANDIDATE_COLUMNS}
    rec.update(sequence_no=1, batch_id="b000000000001", attestation_id="a-1", record_kind="cohort_assignment",
               decision="include", subject_digest="ab" * 32, decided_at=dt.datetime(2026, 10, 1, 12, 0, 0),
               retention_class="P6Y", retention_until=dt.date(2032, 10, 1), confidence=0.5,
               rationale_json='{"score": 0.5, "rules": ["R1"]}')
    rec.update(over)
    return rec


# ----------------------------------------------------------------------------- canonical encoding
def test_canonical_bytes_exact():
    got = canonical_bytes({"b": 1.5, "a": NFD_E, "n": None, "nan": float("nan"), "z": -0.0, "i": 7, "t": True,
                           "ts": dt.datetime(1970, 1, 1, 0, 0, 1), "d": dt.date(2024, 2, 29),
                           "nest": {"y": [1, 2.25, None], "x": {NFD_E: "k"}}})
    assert got == ('{"a":"\u00e9","b":"1.500000","d":"2024-02-29","i":7,"n":null,"nan":null,'
                   '"nest":{"x":{"\u00e9":"k"},"y":[1,"2.250000",null]},"t":true,"ts":1000000,'
                   '"z":"0.000000"}').encode("utf-8")


def test_nfc_and_nfd_hash_the_same():
    nfd = _record(decision=f"caf{NFD_E}", rationale_json=json.dumps({f"k{NFD_E}": f"v{NFD_E}"}, ensure_ascii=False))
    nfc = _record(decision=f"caf{NFC_E}", rationale_json=json.dumps({f"k{NFC_E}": f"v{NFC_E}"}))  # \u escapes
    assert unicodedata.normalize("NFC", nfd["decision"]) == nfc["decision"] != nfd["decision"]
    assert content_hash(nfd) == content_hash(nfc)
    assert content_hashes(pd.DataFrame([nfd, nfc])) == [content_hash(nfc)] * 2
    assert content_hash(_record(decision="cafe")) != content_hash(nfc)


def test_same_instant_naive_utc_and_tz_aware_hash_the_same():
    naive = _record(decided_at=dt.datetime(2026, 10, 1, 12, 0, 0, 123456))
    tokyo = dt.timezone(dt.timedelta(hours=9))
    aware = _record(decided_at=dt.datetime(2026, 10, 1, 21, 0, 0, 123456, tzinfo=tokyo))
    ts_ny = _record(decided_at=pd.Timestamp("2026-10-01 08:00:00.123456", tz="America/New_York"))
    np64 = _record(decided_at=np.datetime64("2026-10-01T12:00:00.123456789"))  # ns floor to us
    assert content_hash(naive) == content_hash(aware) == content_hash(ts_ny) == content_hash(np64)
    assert content_hash(naive) != content_hash(_record(decided_at=dt.datetime(2026, 10, 1, 12, 0, 0, 123457)))
    frame = pd.DataFrame({"x": [pd.Timestamp("2026-10-01 14:00:00.123456", tz="Europe/Berlin")]})
    assert content_hashes(pd.DataFrame([naive]).assign(decided_at=frame["x"])) == [content_hash(naive)]


@pytest.mark.parametrize("x, text", [
    (1.5, "1.500000"), (0.1, "0.100000"), (-0.0, "0.000000"), (-1e-9, "0.000000"), (1, "1.000000"),
    (2 ** -7, "0.007812"),           # 0.0078125 is an exact binary tie -> even
    (3 * 2 ** -7, "0.023438"),       # 0.0234375 tie -> even (8)
    (1e20, "100000000000000000000.000000"), (-2.5, "-2.500000"), (123456.0000005, "123456.000001"),
    (Decimal("0.0000005"), "0.000000"), (Decimal("0.0000015"), "0.000002"),
])
def test_fixed_scale_decimals(x, text):
    assert fixed_decimal(x) == text
    if isinstance(x, float):
        assert _fast_fixed(x) == text


def test_fixed_scale_fast_equals_decimal_on_random_floats():
    rng = random.Random(7)
    q = Decimal("0.000001")
    values = [rng.uniform(-1e6, 1e6) for _ in range(3000)] + [rng.randint(-10 ** 9, 10 ** 9) / 2 ** rng.randint(0, 30)
                                                              for _ in range(3000)]
    values += [rng.random() * 10 ** rng.randint(-12, 30) for _ in range(2000)]
    for v in values:
        exact = Decimal(v).quantize(q, context=Context(prec=400, rounding=ROUND_HALF_EVEN))
        want = "0.000000" if exact.is_zero() else format(exact, "f")
        assert _fast_fixed(v) == fixed_decimal(v) == want, v
    assert fixed_decimal(float("nan")) is None
    with pytest.raises(ValueError):
        fixed_decimal(float("inf"))


def test_nested_json_is_sorted_and_normalised():
    a = _record(rationale_json='{"b":1,"a":{"d":2.5,"c":[1,"x",true,null]}}')
    b = _record(rationale_json='{ "a": {"c": [1, "x", true, null], "d": 2.50}, "b": 1 }')
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash(_record(rationale_json='{"b":1,"a":{"d":2.5,"c":[1,"x",true]}}'))
    body = canonical_bytes({"rationale_json": json.loads(a["rationale_json"])})
    assert body == b'{"rationale_json":{"a":{"c":[1,"x",true,null],"d":"2.500000"},"b":1}}'
    with pytest.raises(ValueError, match="JSON object"):
        content_hash(_record(rationale_json="[1, 2]"))


def _random_text(rng: random.Random) -> str:
    pool = ["a", "Z", "0", " ", NFD_E, NFC_E, "\u00c5", "A\u030a", "\u212b", '"', "\\", "\n", "\t", "\x01",
            "\u2028", "\u65e5", "\U0001f600", "/", "%s", "{", "}"]
    return "".join(rng.choice(pool) for _ in range(rng.randint(0, 8)))


def _random_json(rng: random.Random, depth: int = 0):
    kind = rng.randint(0, 7 if depth < 2 else 5)
    if kind == 0:
        return rng.randint(-10 ** 12, 10 ** 12)
    if kind == 1:
        return rng.choice([rng.uniform(-1e3, 1e3), 2 ** -7, -0.0, 1e-9, 12.0])
    if kind == 2:
        return _random_text(rng)
    if kind == 3:
        return rng.choice([True, False, None])
    if kind in (4, 5):
        return rng.randint(0, 3)
    if kind == 6:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {_random_text(rng) + str(i): _random_json(rng, depth + 1) for i in range(rng.randint(0, 4))}


def _random_records(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    zones = [dt.timezone.utc, dt.timezone(dt.timedelta(hours=-7)), dt.timezone(dt.timedelta(hours=5, minutes=30))]
    out = []
    for i in range(n):
        t = dt.datetime(2020, 1, 1) + dt.timedelta(microseconds=rng.randint(0, 10 ** 14))
        when = rng.choice([t, t.replace(tzinfo=rng.choice(zones)), pd.Timestamp(t), pd.Timestamp(t, tz="Asia/Tokyo")])
        rec = {
            "sequence_no": i + 1, "batch_id": rng.choice(["b000000000001", "b000000000777"]),
            "attestation_id": f"id-{i}-" + _random_text(rng), "record_kind": rng.choice(["k1", "k2", NFD_E]),
            "decision": _random_text(rng), "op": rng.choice([None, "insert", "upd" + NFD_E]),
            "subject_digest": hashlib.sha256(str(i).encode()).hexdigest(),
            "subscriber_id": rng.choice([None, _random_text(rng)]), "method_id": rng.choice([None, "kmeans"]),
            "window_id": rng.choice([None, "w1"]), "cohort_id": rng.choice([None, _random_text(rng)]),
            "confidence": rng.choice([None, float("nan"), rng.random(), -0.0, 2 ** -7, rng.uniform(-1e9, 1e9)]),
            "decided_at": when, "rule_ids": rng.choice([None, "R1|R2", _random_text(rng)]),
            "retention_class": rng.choice(["P3Y", "P6Y"]),
            "retention_until": rng.choice([dt.date(2030, 1, 1) + dt.timedelta(days=rng.randint(0, 4000)), None]),
        }
        for c in ("rationale_json", "art22_json", "admt_json", "custody_json", "attestor_json"):
            obj = {f"k{j}" + _random_text(rng): _random_json(rng) for j in range(rng.randint(0, 5))}
            rec[c] = rng.choice([None, json.dumps(obj, ensure_ascii=rng.random() < 0.5),
                                 json.dumps(obj, ensure_ascii=False, indent=1), '{"fixed": 1}'])
        out.append(rec)
    return out


def test_fast_path_equals_generic_on_random_records():
    records = _random_records(2000, seed=11)
    frame = pd.DataFrame(records)
    fast = content_hashes(frame)
    generic = [content_hash(r) for r in records]
    assert fast == generic
    assert len(set(generic)) == len(generic)
    # the same records through the engine's own Arrow-typed frame hash the same
    typed = chain(frame.drop(columns=["sequence_no", "batch_id"]).assign(retention_until=dt.date(2031, 1, 1)))
    assert typed["content_hash"].tolist() == [content_hash(r) for r in typed.to_dict("records")]


def test_json_numbers_spacing_and_duplicate_keys_hash_like_the_generic_path():
    # Every JSON number spelling, number-like text inside strings and keys, and duplicate keys: the bulk
    # path and the generic definition must agree.
    rng = random.Random(5)
    shapes = ['{"score":%s,"features":{"recency_days":%s,"monetary":%s},"rules":["R1","R2"]}',
              '{ "b" : [ %s , %s ] , "a" : %s }',
              '{"note":"x:5, [7","v":%s,"w":%s,"z":%s}',
              '{"k:1":%s,"k":[%s,{"n":%s}]}',
              '{"a":%s,"a":%s,"b":%s}']

    def number():
        return rng.choice([str(rng.randint(-10 ** 6, 10 ** 6)), "-0", "0", repr(rng.uniform(-1e4, 1e4)), "-0.0",
                           "0.0078125", "1e3", "2.5E-7", "-1.0e+2", str(rng.randint(0, 9)), "123456.0000005"])

    records = [_record(attestation_id=f"a{i}", rationale_json=rng.choice(shapes) % (number(), number(), number()))
               for i in range(600)]
    assert content_hashes(pd.DataFrame(records)) == [content_hash(r) for r in records]
    with pytest.raises(ValueError):
        content_hashes(pd.DataFrame([_record(rationale_json='{"score":%s}' % x) for x in ("1.5", "1e400")]))


# ----------------------------------------------------------------------------- chain
def test_chain_continues_across_calls_and_is_deterministic():
    a = synthetic_candidates(50, seed=1)
    first = chain(a)
    assert list(first.columns) == LEDGER_COLUMNS
    assert first["sequence_no"].tolist() == list(range(1, 51))
    assert set(first["batch_id"]) == {"b000000000001"}
    assert first["prev_hash"].iloc[0] == GENESIS_HASH
    keys = list(zip(first["decided_at"], first["record_kind"], first["attestation_id"]))
    assert keys == sorted(keys)
    # shuffled input, same output
    pd.testing.assert_frame_equal(chain(a.sample(frac=1.0, random_state=3)), first)

    n, h = ledger_tail(first)
    second = chain(synthetic_candidates(30, seed=2), last_sequence_no=n, last_record_hash=h)
    assert second["sequence_no"].tolist() == list(range(51, 81))
    assert set(second["batch_id"]) == {"b000000000051"}
    assert second["prev_hash"].iloc[0] == first["record_hash"].iloc[-1]
    both = pd.concat([first, second], ignore_index=True)
    for i in range(1, len(both)):
        assert both["prev_hash"].iloc[i] == both["record_hash"].iloc[i - 1]
        assert both["record_hash"].iloc[i] == record_hash(both["prev_hash"].iloc[i], both["content_hash"].iloc[i])
    assert both["content_hash"].tolist() == [content_hash(r) for r in both.to_dict("records")]


def test_chain_validation_and_empty_input():
    c = synthetic_candidates(5, seed=1)
    with pytest.raises(ValueError, match="missing columns: decision"):
        chain(c.drop(columns=["decision"]))
    with pytest.raises(ValueError, match="unexpected columns: record_hash"):
        chain(c.assign(record_hash="x"))
    with pytest.raises(ValueError, match="duplicate attestation_id"):
        chain(c.assign(attestation_id="same"))
    with pytest.raises(ValueError, match="required columns: decision"):
        chain(c.assign(decision=None))
    with pytest.raises(ValueError, match="last_record_hash is required"):
        chain(c, last_sequence_no=10)
    empty = chain(c.iloc[0:0])
    assert list(empty.columns) == LEDGER_COLUMNS and len(empty) == 0
    assert {str(empty[col].dtype) for col in ("sequence_no", "confidence", "decided_at", "retention_until")} == {
        "int64[pyarrow]", "double[pyarrow]", "timestamp[us][pyarrow]", "date32[day][pyarrow]"}
    full = chain(c)
    assert [str(full[col].dtype) for col in empty.columns] == [str(empty[col].dtype) for col in empty.columns]


# ----------------------------------------------------------------------------- Merkle (RFC 6962)
def _ref_root(leaves: list[bytes]) -> bytes:
    """MTH from RFC 6962 section 2.1, written as in the RFC."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + _ref_root(leaves[:k]) + _ref_root(leaves[k:])).digest()


def test_merkle_root_small_hand_computed():
    hs = [hashlib.sha256(bytes([i])).hexdigest() for i in range(3)]
    leaf = [hashlib.sha256(b"\x00" + bytes.fromhex(h)).digest() for h in hs]
    n01 = hashlib.sha256(b"\x01" + leaf[0] + leaf[1]).digest()
    assert merkle_root(hs) == hashlib.sha256(b"\x01" + n01 + leaf[2]).hexdigest()  # odd leaf promoted
    assert merkle_root(hs[:1]) == leaf[0].hex()
    assert merkle_root([]) == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("n", range(1, 10))
def test_merkle_root_and_inclusion_proofs(n):
    hs = [hashlib.sha256(f"r{i}".encode()).hexdigest() for i in range(n)]
    root = merkle_root(hs)
    assert root == _ref_root([bytes.fromhex(h) for h in hs]).hex()
    for i in range(n):
        path = audit_path(hs, i)
        assert len(path) <= (n - 1).bit_length()
        assert verify_inclusion(hs[i], i, n, path, root)
        assert not verify_inclusion(hashlib.sha256(b"forged").hexdigest(), i, n, path, root)
        if n > 1:
            assert not verify_inclusion(hs[i], (i + 1) % n, n, path, root)
            assert not verify_inclusion(hs[i], i, n, path[:-1], root)
    assert merkle_root(hs[::-1]) != root or n == 1


# ----------------------------------------------------------------------------- WORM
def test_worm_write_once_idempotent_and_refuses_other_content(tmp_path):
    rows = chain(synthetic_candidates(40, seed=3))
    uri, sha = write_batch(tmp_path, "b000000000001", rows)
    path = tmp_path / uri
    assert uri == "batches/b000000000001.parquet" and path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()
    assert write_batch(tmp_path, "b000000000001", rows) == (uri, sha)  # crash-retry: same records
    other = rows.copy()
    other.loc[3, "decision"] = "tampered"
    with pytest.raises(WormError, match="different records"):
        write_batch(tmp_path, "b000000000001", other)
    with pytest.raises(WormError):
        write_batch(tmp_path, "b000000000001", rows.iloc[:-1])
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    assert sorted(p.name for p in path.parent.iterdir()) == ["b000000000001.parquet"]  # no temp files left
    # deterministic bytes: the same records written elsewhere give the same file
    assert write_batch(tmp_path / "again", "b000000000001", rows)[1] == sha
    with pytest.raises(ValueError):
        write_batch(tmp_path, "../escape", rows)


# ----------------------------------------------------------------------------- keys
def test_demo_key_warns_and_is_reused(tmp_path):
    err = io.StringIO()
    s1 = load_signer(tmp_path, environ={}, stderr=err)
    assert "DEMO KEY" in err.getvalue() and "not for production".upper() in err.getvalue().upper()
    assert ENV_SIGNING_KEY in err.getvalue()
    assert s1.is_demo
    assert stat.S_IMODE((tmp_path / DEMO_KEY_FILE).stat().st_mode) == 0o600
    assert fingerprint(load_public_key(tmp_path / "public_key.pem")) == s1.fingerprint
    s2 = load_signer(tmp_path, environ={}, stderr=io.StringIO())
    assert s2.fingerprint == s1.fingerprint


def test_env_keys_pem_seed_and_file(tmp_path):
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    want = fingerprint(key.public_key())
    err = io.StringIO()
    for i, value in enumerate([pem, seed.hex(), base64.b64encode(seed).decode()]):
        s = load_signer(tmp_path / f"k{i}", environ={ENV_SIGNING_KEY: value}, stderr=err)
        assert s.fingerprint == want and not s.is_demo
        assert s.fingerprint == hashlib.sha256(key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)).hexdigest()
    key_file = tmp_path / "signing.pem"
    key_file.write_text(pem)
    assert load_signer(tmp_path / "kf", environ={ENV_SIGNING_KEY_FILE: str(key_file)}, stderr=err).fingerprint == want
    assert err.getvalue() == ""  # no demo warning with a real key
    msg = b"checkpoint"
    key.public_key().verify(bytes.fromhex(s.sign(msg)), msg)
    # a different key must not silently replace a published public key
    with pytest.raises(AttestationKeyError, match="different public key"):
        load_signer(tmp_path / "k0", environ={ENV_SIGNING_KEY: Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()).hex()})
    with pytest.raises(AttestationKeyError):
        load_signer(tmp_path / "bad", environ={ENV_SIGNING_KEY: "not a key"})


# ----------------------------------------------------------------------------- seal + verify
def _env_signer(tmp_path, name="genuine"):
    seed = hashlib.sha256(name.encode()).hexdigest()
    return load_signer(tmp_path / f"keys-{name}", environ={ENV_SIGNING_KEY: seed})


def test_seal_and_verify_round_trip(tmp_path):
    worm = tmp_path / "worm"
    signer = _env_signer(tmp_path)
    ledger = chain(synthetic_candidates(64, seed=1))
    cps = seal(ledger, previous_checkpoint=None, worm_dir=worm, signer=signer)
    assert list(cps.columns) == CHECKPOINT_COLUMNS and len(cps) == 1
    # two more runs chained on, sealed together in one call
    n, h = ledger_tail(ledger)
    b2 = chain(synthetic_candidates(10, seed=2), last_sequence_no=n, last_record_hash=h)
    n, h = ledger_tail(b2)
    b3 = chain(synthetic_candidates(7, seed=3), last_sequence_no=n, last_record_hash=h)
    cps2 = seal(pd.concat([b2, b3]), previous_checkpoint=last_checkpoint(cps), worm_dir=worm, signer=signer)
    assert cps2["checkpoint_no"].tolist() == [2, 3]
    assert cps2["prev_checkpoint_hash"].iloc[0] == cps["checkpoint_hash"].iloc[0]
    full, all_cps = pd.concat([ledger, b2, b3], ignore_index=True), pd.concat([cps, cps2], ignore_index=True)
    pub = signer.public_key
    result = verify(full, all_cps, worm, pub)
    assert result.ok, result.errors
    assert result.stats == {"records": 81, "batches": 3, "checkpoints": 3}

    # an inclusion proof for one decision, checked against the signed root only
    rows = full[full["batch_id"] == all_cps["batch_id"].iloc[1]]
    i = 4
    proof = audit_path(rows["record_hash"].tolist(), i)
    assert verify_inclusion(rows["record_hash"].iloc[i], i, len(rows), proof, all_cps["merkle_root"].iloc[1])

    # sealing must continue the sealed ledger exactly
    with pytest.raises(SealError, match="expected 1"):
        seal(b2, previous_checkpoint=None, worm_dir=tmp_path / "w2", signer=signer)
    tampered = ledger.copy()
    tampered.loc[0, "decision"] = "forged"
    with pytest.raises(SealError, match="content_hash does not recompute; refusing to sign"):
        seal(tampered, previous_checkpoint=None, worm_dir=tmp_path / "w3", signer=signer, recheck_content=True)
    assert not list((tmp_path / "w3").rglob("*.parquet")) and not list((tmp_path / "w3").rglob("*.tmp"))
    # by default seal trusts the content hashes the ledger step computed (verify recomputes them) ...
    forged = seal(tampered, previous_checkpoint=None, worm_dir=tmp_path / "w4", signer=signer)
    r = verify(tampered, forged, tmp_path / "w4", signer.public_key)
    assert not r.ok and r.first_error.startswith("record 1 (") and "content_hash" in r.first_error
    # ... but still re-checks every link: record_hash = sha256(prev_hash || content_hash), prev = last record
    for col, i in (("record_hash", 5), ("prev_hash", 9), ("content_hash", 20)):
        broken = ledger.copy()
        broken.loc[i, col] = hashlib.sha256(b"forged").hexdigest()
        with pytest.raises(SealError, match=f"record {i + 1} .*hash chain broken; refusing to sign"):
            seal(broken, previous_checkpoint=None, worm_dir=tmp_path / "w5", signer=signer)
    assert not list((tmp_path / "w5").rglob("*.parquet")) and not list((tmp_path / "w5").rglob("*.tmp"))

    # unsealed tail is reported
    n, h = ledger_tail(full)
    tail = chain(synthetic_candidates(3, seed=4), last_sequence_no=n, last_record_hash=h)
    r = verify(pd.concat([full, tail], ignore_index=True), all_cps, worm, pub)
    assert not r.ok and r.first_error == "records 82..84 not sealed by a checkpoint"

    # a WORM file rewritten (root can chmod) or removed is reported for its batch
    f = worm / all_cps["worm_uri"].iloc[1]
    original = f.read_bytes()
    os.chmod(f, 0o644)
    f.write_bytes(original[:-8] + b"tampered")
    r = verify(full, all_cps, worm, pub)
    assert not r.ok and "does not hash to worm_sha256" in r.first_error and "checkpoint 2" in r.first_error
    f.unlink()
    r = verify(full, all_cps, worm, pub)
    assert not r.ok and "is missing" in r.first_error
    f.write_bytes(original)
    assert verify(full, all_cps, worm, pub).ok

    # wrong public key -> every signature fails
    r = verify(full, all_cps, worm, _env_signer(tmp_path, "other").public_key)
    assert not r.ok and "signature is not valid" in r.first_error


def _write_duckdb(path, ledger, cps, schema="main_attestation"):
    con = duckdb.connect(str(path))
    con.execute(f"create schema if not exists {schema}")
    con.register("l", ledger)
    con.register("c", cps)
    con.execute(f"create table {schema}.attestation_ledger as select * from l")
    con.execute(f"create table {schema}.attestation_checkpoints as select * from c")
    con.close()


def test_verify_duckdb_and_cli(tmp_path, capsys, monkeypatch):
    worm = tmp_path / "worm"
    signer = load_signer(worm, environ={ENV_SIGNING_KEY: hashlib.sha256(b"cli").hexdigest()})
    ledger = chain(synthetic_candidates(30, seed=9))
    cps = seal(ledger, previous_checkpoint=None, worm_dir=worm, signer=signer)
    db = tmp_path / "a.duckdb"
    _write_duckdb(db, ledger, cps)
    con = duckdb.connect(str(db), read_only=True)
    types = dict(con.execute("select column_name, data_type from information_schema.columns "
                             "where table_name = 'attestation_ledger'").fetchall())
    con.close()
    assert types["sequence_no"] == "BIGINT" and types["decided_at"] == "TIMESTAMP"
    assert types["retention_until"] == "DATE" and types["confidence"] == "DOUBLE"
    assert verify_duckdb(db, worm_dir=worm).ok

    monkeypatch.delenv("MARKETING_SIGNALS_VERIFY_KEY", raising=False)
    assert cli_main(["verify", "--duckdb", str(db), "--worm-dir", str(worm)]) == 0
    assert "OK" in capsys.readouterr().out
    other_pem = Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    monkeypatch.setenv("MARKETING_SIGNALS_VERIFY_KEY", other_pem.decode())  # env key wins over the WORM copy
    assert cli_main(["verify", "--duckdb", str(db), "--worm-dir", str(worm)]) == 1
    assert "signature is not valid" in capsys.readouterr().out
    monkeypatch.setenv("MARKETING_SIGNALS_VERIFY_KEY", (worm / "public_key.pem").read_text())
    assert cli_main(["verify", "--duckdb", str(db), "--worm-dir", str(tmp_path / "empty")]) == 1  # WORM file missing
    assert "is missing" in capsys.readouterr().out
    monkeypatch.setenv("MARKETING_SIGNALS_VERIFY_KEY", "garbage")
    assert cli_main(["verify", "--duckdb", str(db), "--worm-dir", str(worm)]) == 2
    monkeypatch.delenv("MARKETING_SIGNALS_VERIFY_KEY")

    bad = tmp_path / "bad.duckdb"
    t = ledger.copy()
    t.loc[7, "decision"] = "exclude" if t.loc[7, "decision"] != "exclude" else "include"
    _write_duckdb(bad, t, cps)
    assert cli_main(["verify", "--duckdb", str(bad), "--worm-dir", str(worm)]) == 1
    out = capsys.readouterr().out
    assert "FAILED: record 8 (" in out and "content_hash" in out

    other = tmp_path / "other.pem"
    other.write_bytes(other_pem)
    assert cli_main(["verify", "--duckdb", str(db), "--worm-dir", str(worm), "--public-key", str(other)]) == 1
    assert cli_main(["verify", "--duckdb", str(tmp_path / "missing.duckdb"), "--worm-dir", str(worm)]) == 2
    assert cli_main(["verify", "--duckdb", str(db), "--schema", "nope", "--worm-dir", str(worm)]) == 2
    assert cli_main(["verify", "--duckdb", str(db), "--worm-dir", str(worm),
                     "--public-key", str(tmp_path / "none.pem")]) == 2
    assert os.path.exists(db)


def test_dbt_bridge_appends_and_verifies(tmp_path):
    from marketing_signals.attestation import dbt_bridge

    worm, db = tmp_path / "worm", tmp_path / "bridge.duckdb"
    env = {ENV_SIGNING_KEY: hashlib.sha256(b"bridge").hexdigest()}
    con = duckdb.connect(str(db))
    con.execute("create schema main_attestation")
    for run, seed in enumerate((1, 2, 2)):  # the third run repeats the second run's candidates
        cand = synthetic_candidates(25, seed=seed, id_prefix="x")
        con.register("cand_df", cand)
        con.execute("create or replace table cand as select * from cand_df")
        existing = '"main_attestation"."attestation_ledger"' if run else None
        reader = dbt_bridge.ledger_append(con, con.table("cand"), existing=existing)
        assert isinstance(reader, pa.RecordBatchReader) and reader.schema == LEDGER_SCHEMA
        con.register("new_rows", reader)  # consumed by DuckDB on `con`, as dbt-duckdb materialises it
        if run:
            con.execute("insert into main_attestation.attestation_ledger select * from new_rows")
        else:
            con.execute("create table main_attestation.attestation_ledger as select * from new_rows")
        added = con.execute("select count(*) from main_attestation.attestation_ledger").fetchall()[0][0]
        assert added == (25, 50, 50)[run]
        ledger = con.table("main_attestation.attestation_ledger")
        existing_cp = '"main_attestation"."attestation_checkpoints"' if run else None
        cps = dbt_bridge.checkpoints_append(con, ledger, existing=existing_cp, worm_dir=worm, environ=env)
        con.register("new_cps", cps)
        if run:
            con.execute("insert into main_attestation.attestation_checkpoints select * from new_cps")
        else:
            con.execute("create table main_attestation.attestation_checkpoints as select * from new_cps")
        assert len(cps) == (1 if run < 2 else 0)
    con.close()
    r = verify_duckdb(db, worm_dir=worm)
    assert r.ok, r.errors
    assert r.stats == {"records": 50, "batches": 2, "checkpoints": 2}


# ----------------------------------------------------------------------------- streaming / parallel
def test_parallel_content_hashing_is_byte_identical():
    from marketing_signals.attestation.canonical import content_digest_blob, content_digests

    cand = synthetic_candidates(25_000, seed=11)
    cand.loc[3, "rationale_json"] = '{"b": 1.5, "a": "caf' + NFD_E + '"}'  # slow-path JSON in one chunk
    rows = chain(cand, batch_id="bparallel")
    serial = content_digest_blob(rows, workers=1)
    assert content_digest_blob(rows, workers=2) == serial
    assert content_digest_blob(rows, workers=3) == serial
    assert content_hashes(rows, workers=2) == rows["content_hash"].tolist()
    assert content_digests(rows.iloc[:10], workers=2) == [bytes.fromhex(h) for h in rows["content_hash"][:10]]
    with pytest.raises(ValueError):  # errors in a worker reach the caller
        bad = rows.copy()
        bad.loc[20_000, "rationale_json"] = '{"x": 1e400}'
        content_digest_blob(bad, workers=2)


def test_chain_with_batch_id_in_pieces_equals_one_call():
    cand = synthetic_candidates(1_000, seed=12)
    whole = chain(cand)
    order = whole["attestation_id"].tolist()
    by_id = cand.set_index("attestation_id").loc[order].reset_index()[CANDIDATE_COLUMNS]
    pieces, seq, h = [], 0, None
    for lo in range(0, 1_000, 333):
        part = chain(by_id.iloc[lo:lo + 333].reset_index(drop=True), last_sequence_no=seq, last_record_hash=h,
                     batch_id="b000000000001")
        seq, h = ledger_tail(part)
        pieces.append(part)
    pd.testing.assert_frame_equal(pd.concat(pieces, ignore_index=True), whole)


@pytest.mark.parametrize("batch_rows", ["1", "7", "200000"])
def test_ledger_append_streams_the_same_rows_as_chain(tmp_path, monkeypatch, batch_rows):
    from marketing_signals.attestation import dbt_bridge

    monkeypatch.setenv("MARKETING_SIGNALS_ATTESTATION_BATCH_ROWS", batch_rows)
    con = duckdb.connect(str(tmp_path / "s.duckdb"))
    first = synthetic_candidates(40, seed=21, id_prefix="s")
    fresh = synthetic_candidates(25, seed=22, id_prefix="s")
    fresh["decided_at"] = fresh["decided_at"].iloc[0]  # ties on decided_at: record_kind / id decide
    second = pd.concat([fresh.iloc[:10], first, fresh.iloc[10:]], ignore_index=True)  # the first run again + 25
    for name, frame in (("c1", first), ("c2", second)):
        con.register("f", frame)
        con.execute(f"create table {name} as select * from f")
        con.unregister("f")
    r1 = dbt_bridge.ledger_append(con, con.table("c1"))
    con.register("r1", r1)
    con.execute("create table ledger as select * from r1")
    expected1 = chain(first)
    got1 = con.sql("select * from ledger order by sequence_no").to_arrow_table()
    assert got1.equals(pa.Table.from_pandas(expected1, preserve_index=False).cast(LEDGER_SCHEMA))
    r2 = dbt_bridge.ledger_append(con, con.table("c2"), existing="ledger").read_all()
    n, h = ledger_tail(expected1)
    expected2 = chain(fresh, last_sequence_no=n, last_record_hash=h)
    assert r2.equals(pa.Table.from_pandas(expected2, preserve_index=False).cast(LEDGER_SCHEMA))
    assert set(r2.column("batch_id").to_pylist()) == {"b000000000041"}
    # nothing new: an empty reader that still has the schema
    con.register("r2", r2)
    con.execute("insert into ledger select * from r2")
    empty = dbt_bridge.ledger_append(con, con.table("c2"), existing="ledger")
    assert empty.schema == LEDGER_SCHEMA and empty.read_all().num_rows == 0
    # a pandas frame as the candidates, and the validations chain() does
    assert dbt_bridge.ledger_append(con, first).read_all().equals(got1)
    with pytest.raises(ValueError, match="duplicate attestation_id"):
        dbt_bridge.ledger_append(con, pd.concat([first, first.iloc[:2]]))
    with pytest.raises(ValueError, match="required columns: decision"):
        dbt_bridge.ledger_append(con, first.assign(decision=None))
    with pytest.raises(ValueError, match="unexpected columns: record_hash"):
        dbt_bridge.ledger_append(con, first.assign(record_hash="x"))
    con.close()


def test_worm_file_bytes_do_not_depend_on_how_rows_are_fed(tmp_path, monkeypatch):
    from marketing_signals.attestation import worm

    monkeypatch.setattr(worm, "ROW_GROUP_ROWS", 100)
    rows = chain(synthetic_candidates(350, seed=31))
    _, sha = write_batch(tmp_path / "a", "b000000000001", rows)
    w = worm.BatchWriter(tmp_path / "b", "b000000000001")
    for lo in range(0, 350, 37):
        w.write(rows.iloc[lo:lo + 37])
    w.finish()
    assert w.publish()[1] == sha == worm.file_sha256(tmp_path / "b" / "batches" / "b000000000001.parquet")
    assert worm.same_record_files(tmp_path / "a" / "batches" / "b000000000001.parquet",
                                  tmp_path / "b" / "batches" / "b000000000001.parquet") is None


def test_seal_stream_in_pieces_equals_seal(tmp_path):
    from marketing_signals.attestation.checkpoint import seal_stream

    signer = _env_signer(tmp_path)
    a = chain(synthetic_candidates(90, seed=41))
    n, h = ledger_tail(a)
    b = chain(synthetic_candidates(60, seed=42), last_sequence_no=n, last_record_hash=h)
    both = pd.concat([a, b], ignore_index=True)
    whole = seal(both, previous_checkpoint=None, worm_dir=tmp_path / "w1", signer=signer)
    table = pa.Table.from_pandas(both, preserve_index=False)
    pieces = seal_stream((table.slice(lo, 13) for lo in range(0, 150, 13)), previous_checkpoint=None,
                         worm_dir=tmp_path / "w2", signer=signer)
    pd.testing.assert_frame_equal(pieces, whole)
    assert verify(both, pieces, tmp_path / "w2", signer.public_key).ok
    checked = seal(both, previous_checkpoint=None, worm_dir=tmp_path / "w3", signer=signer, recheck_content=True)
    pd.testing.assert_frame_equal(checked, whole)
