"""Ed25519 signing key for checkpoints, and the public key the verifier trusts.

The private key comes from the environment, never from the warehouse:
* MARKETING_SIGNALS_SIGNING_KEY: PEM text of an Ed25519 private key, or the 32-byte raw seed as hex or
  base64; or
* MARKETING_SIGNALS_SIGNING_KEY_FILE: path to such a PEM file.
With neither set, a DEMO key is loaded from (or created at) <key_dir>/demo_signing_key.pem, mode 0600,
with a loud warning on stderr: anyone who can read that file can forge checkpoints.

`load_signer` always (re)writes <key_dir>/public_key.pem and refuses to replace one holding a different
key (a key rotation is a deliberate act: move the old file away and keep it for verifying old
checkpoints). The verifier takes the public key from the caller (a file or PEM text handed over out of
band), never from the tables it checks. A key's fingerprint is sha256 hex of its raw 32 bytes.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ENV_SIGNING_KEY = "MARKETING_SIGNALS_SIGNING_KEY"
ENV_SIGNING_KEY_FILE = "MARKETING_SIGNALS_SIGNING_KEY_FILE"
ENV_VERIFY_KEY = "MARKETING_SIGNALS_VERIFY_KEY"
DEMO_KEY_FILE = "demo_signing_key.pem"
PUBLIC_KEY_FILE = "public_key.pem"

DEMO_WARNING = """
################################################################################
##  WARNING: attestation checkpoints are being signed with a DEMO KEY
##    {path}
##  DEMO KEY -- NOT FOR PRODUCTION. It sits next to the data it protects, so
##  anyone who can read that file can forge signed checkpoints.
##  Set MARKETING_SIGNALS_SIGNING_KEY (Ed25519 PEM, or the 32-byte seed as hex or
##  base64) or MARKETING_SIGNALS_SIGNING_KEY_FILE from your secret manager.
################################################################################
"""


class AttestationKeyError(ValueError):
    """A key cannot be read, or does not match the published public key."""


def public_raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """sha256 hex of the raw 32-byte public key."""
    return hashlib.sha256(public_raw(public_key)).hexdigest()


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class Signer:
    private_key: Ed25519PrivateKey
    source: str  # "env", "file:<path>" or "demo:<path>"

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    @property
    def is_demo(self) -> bool:
        return self.source.startswith("demo:")

    def sign(self, message: bytes) -> str:
        """Hex Ed25519 signature (64 bytes)."""
        return self.private_key.sign(message).hex()


def parse_private_key(text: str | bytes) -> Ed25519PrivateKey:
    """PEM (PKCS#8, unencrypted) of an Ed25519 key, or the raw 32-byte seed as hex or base64."""
    data = text.encode() if isinstance(text, str) else bytes(text)
    stripped = data.strip()
    if b"-----BEGIN" in stripped:
        try:
            key = serialization.load_pem_private_key(stripped, password=None)
        except (ValueError, TypeError) as e:
            raise AttestationKeyError(f"signing key PEM cannot be read: {e}") from e
        if not isinstance(key, Ed25519PrivateKey):
            raise AttestationKeyError(f"signing key is a {type(key).__name__}, not an Ed25519 private key")
        return key
    seed = None
    s = stripped.decode("ascii", "replace")
    if len(s) == 64:
        try:
            seed = bytes.fromhex(s)
        except ValueError:
            seed = None
    if seed is None:
        try:
            seed = base64.b64decode(s, validate=True)
        except (binascii.Error, ValueError):
            seed = None
    if seed is None or len(seed) != 32:
        raise AttestationKeyError("signing key must be Ed25519 PEM, or a 32-byte seed as 64 hex digits or base64")
    return Ed25519PrivateKey.from_private_bytes(seed)


def _private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _demo_key(key_dir: Path) -> tuple[Ed25519PrivateKey, Path]:
    path = key_dir / DEMO_KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return parse_private_key(path.read_bytes()), path
    key = Ed25519PrivateKey.generate()
    with os.fdopen(fd, "wb") as f:
        f.write(_private_pem(key))
    return key, path


def publish_public_key(public_key: Ed25519PublicKey, key_dir: str | os.PathLike) -> Path:
    """Write <key_dir>/public_key.pem; an existing file must hold the same key."""
    key_dir = Path(key_dir)
    key_dir.mkdir(parents=True, exist_ok=True)
    path = key_dir / PUBLIC_KEY_FILE
    pem = public_pem(public_key)
    if path.exists():
        existing = load_public_key(path)
        if public_raw(existing) != public_raw(public_key):
            raise AttestationKeyError(
                f"{path} holds a different public key (fingerprint {fingerprint(existing)}) than the signing "
                f"key ({fingerprint(public_key)}); refusing to replace it. Keep the old key to verify old "
                "checkpoints and move the file away deliberately to rotate.")
        if path.read_bytes() == pem:
            return path
    fd, tmp = tempfile.mkstemp(dir=key_dir, prefix=".public_key.", suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def load_signer(key_dir: str | os.PathLike, *, environ: dict | None = None, stderr: IO[str] | None = None) -> Signer:
    """The checkpoint signer (see the module docstring for where the key comes from)."""
    env = os.environ if environ is None else environ
    key_dir = Path(key_dir)
    key_dir.mkdir(parents=True, exist_ok=True)
    if env.get(ENV_SIGNING_KEY):
        signer = Signer(parse_private_key(env[ENV_SIGNING_KEY]), "env")
    elif env.get(ENV_SIGNING_KEY_FILE):
        path = Path(env[ENV_SIGNING_KEY_FILE]).expanduser()
        if not path.is_file():
            raise AttestationKeyError(f"{ENV_SIGNING_KEY_FILE}={path}: no such file")
        signer = Signer(parse_private_key(path.read_bytes()), f"file:{path}")
    else:
        key, path = _demo_key(key_dir)
        signer = Signer(key, f"demo:{path}")
        print(DEMO_WARNING.format(path=path), file=stderr or sys.stderr, flush=True)
    publish_public_key(signer.public_key, key_dir)
    return signer


def load_public_key(pem_or_path: str | bytes | os.PathLike | Ed25519PublicKey) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM text/bytes, or from a path to a PEM file."""
    if isinstance(pem_or_path, Ed25519PublicKey):
        return pem_or_path
    if isinstance(pem_or_path, (bytes, bytearray)):
        data = bytes(pem_or_path)
    elif isinstance(pem_or_path, str) and "-----BEGIN" in pem_or_path:
        data = pem_or_path.encode()
    else:
        path = Path(pem_or_path)
        if not path.is_file():
            raise AttestationKeyError(f"public key file not found: {path}")
        data = path.read_bytes()
    try:
        key = serialization.load_pem_public_key(data.strip())
    except (ValueError, TypeError) as e:
        raise AttestationKeyError(f"public key PEM cannot be read: {e}") from e
    if not isinstance(key, Ed25519PublicKey):
        raise AttestationKeyError(f"public key is a {type(key).__name__}, not Ed25519")
    return key


def verify_signature(public_key: Ed25519PublicKey, message: bytes, signature_hex: str) -> bool:
    try:
        public_key.verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
