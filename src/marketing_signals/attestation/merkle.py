"""Merkle tree hash of one batch, RFC 6962 (Certificate Transparency) style.

Leaves are the batch's record_hash values in sequence order. leaf = sha256(0x00 || record_hash bytes),
node = sha256(0x01 || left || right); a tree of n > 1 leaves splits at k, the largest power of two
smaller than n, so an odd leaf is promoted rather than duplicated (no CVE-2012-2459 style second
preimages), and the 0x00 / 0x01 prefixes keep leaves and inner nodes from being confused. The root of an
empty tree is sha256(b"").

`audit_path` / `verify_inclusion` (RFC 6962 section 2.1.1 / RFC 9162 section 2.1.3.2) let one decision be
proved to an auditor with log2(n) hashes, the signed checkpoint and the public key, without the batch.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence


def leaf_hash(record_hash: str) -> bytes:
    return hashlib.sha256(b"\x00" + bytes.fromhex(record_hash)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def merkle_root(record_hashes: Sequence[str]) -> str:
    """Hex root over the record hashes (in the given order). Bottom-up: pair neighbours, carry an odd
    last node up unchanged, which builds exactly the RFC 6962 split-at-largest-power-of-two tree."""
    if len(record_hashes) == 0:
        return hashlib.sha256(b"").hexdigest()
    sha = hashlib.sha256
    level = [sha(b"\x00" + bytes.fromhex(h)).digest() for h in record_hashes]
    while len(level) > 1:
        nxt = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0].hex()


def _subtree_root(leaves: Sequence[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _largest_power_of_two_below(len(leaves))
    return node_hash(_subtree_root(leaves[:k]), _subtree_root(leaves[k:]))


def _path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = _largest_power_of_two_below(n)
    if m < k:
        return _path(m, leaves[:k]) + [_subtree_root(leaves[k:])]
    return _path(m - k, leaves[k:]) + [_subtree_root(leaves[:k])]


def audit_path(record_hashes: Sequence[str], index: int) -> list[str]:
    """RFC 6962 PATH(index, D[n]): the sibling hashes (hex) from the leaf up to the root."""
    n = len(record_hashes)
    if not 0 <= index < n:
        raise IndexError(f"leaf index {index} outside a tree of {n} leaves")
    return [h.hex() for h in _path(index, [leaf_hash(h) for h in record_hashes])]


def verify_inclusion(record_hash: str, index: int, tree_size: int, path: Sequence[str], root: str) -> bool:
    """True when `path` proves that `record_hash` is leaf `index` of the tree of `tree_size` leaves with
    hex root `root` (RFC 9162 section 2.1.3.2)."""
    if not 0 <= index < tree_size:
        return False
    fn, sn = index, tree_size - 1
    r = leaf_hash(record_hash)
    for p_hex in path:
        p = bytes.fromhex(p_hex)
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r.hex() == root


class MerkleBuilder:
    """The same root as `merkle_root`, fed leaves in order a piece at a time, in O(log n) memory: a stack
    of complete subtrees of decreasing power-of-two sizes; the root folds them from the right, which is
    RFC 6962's split at the largest power of two."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self.count = 0

    def add_digests(self, record_digests: bytes) -> None:
        """Record hashes as raw 32-byte digests, concatenated, in sequence order."""
        sha = hashlib.sha256
        stack = self._stack
        push, pop = stack.append, stack.pop
        for i in range(0, len(record_digests), 32):
            node = sha(b"\x00" + record_digests[i:i + 32]).digest()
            size = 1
            while stack and stack[-1][0] == size:
                node = sha(b"\x01" + pop()[1] + node).digest()
                size <<= 1
            push((size, node))
        self.count += len(record_digests) // 32

    def add(self, record_hashes: Sequence[str]) -> None:
        self.add_digests(b"".join(bytes.fromhex(h) for h in record_hashes))

    def root(self) -> str:
        if not self._stack:
            return hashlib.sha256(b"").hexdigest()
        node = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            node = node_hash(left, node)
        return node.hex()
