"""RFC 6962 / RFC 9162 Merkle trees: hashing, proofs and their verification (pure functions).

The log stores the hash of every *perfect, aligned* subtree once it is complete, keyed by
``(level, index)``: level 0 holds the leaf hashes, and node ``(level, index)`` covers leaves
``[index * 2**level, (index + 1) * 2**level)``. Such a node never changes once written, so the
hash of any range the RFC algorithms ask for (the root of a tree of size ``n``, or a proof
element) is a right fold over at most ``log2(n)`` stored nodes. Proof generation here therefore
works in two steps: list the ranges a proof needs (``inclusion_ranges``/``consistency_ranges``),
then the nodes those ranges need (``nodes_for_ranges``), read them in one query, and fold.
Appends keep the *frontier* (the perfect subtrees of ``[0, size)``, largest first) and return
the nodes each append completes: about two per event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Node = tuple[int, int]  # (level, index)
Range = tuple[int, int]  # [start, end) in leaves


class ProofError(ValueError):
    """A proof does not verify, or its parameters are impossible."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


# --- ranges and stored nodes -------------------------------------------------------------


def range_nodes(start: int, end: int) -> list[Node]:
    """The stored perfect subtrees whose right fold is MTH(D[start:end]), left to right.

    ``start`` must be aligned as in RFC 6962's recursion (true for every range a root or a
    proof needs): the range splits into descending powers of two, each aligned.
    """
    if not 0 <= start < end:
        raise ValueError(f"empty or negative range [{start}, {end})")
    nodes: list[Node] = []
    position, remaining = start, end - start
    for level in range(remaining.bit_length() - 1, -1, -1):
        if remaining >> level & 1:
            if position % (1 << level):
                raise ValueError(f"range [{start}, {end}) is not aligned as RFC 6962 splits it")
            nodes.append((level, position >> level))
            position += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """Right fold of perfect-subtree hashes (largest first) into the root they make."""
    if not hashes:
        return EMPTY_ROOT
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = node_hash(left, root)
    return root


def nodes_for_ranges(ranges: Iterable[Range]) -> set[Node]:
    needed: set[Node] = set()
    for start, end in ranges:
        needed.update(range_nodes(start, end))
    return needed


def range_hash(start: int, end: int, nodes: Mapping[Node, bytes]) -> bytes:
    return fold([nodes[node] for node in range_nodes(start, end)])


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The ranges whose hashes make the RFC 6962 PATH(index, D[0:size]), in proof order."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not below the tree size {size}")
    ranges: list[Range] = []
    start, end = 0, size
    # Walk down from the root; the proof lists siblings bottom-up, so collect and reverse.
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start = start + k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[Range]:
    """The ranges whose hashes make the RFC 6962 PROOF(first, D[0:second]), in proof order."""
    if not 0 < first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    if first == second:
        return []
    ranges: list[Range] = []
    start, end, m, complete = 0, second, first, True
    while True:
        n = end - start
        if m == n:
            if not complete:
                ranges.append((start, end))
            break
        k = _split(n)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, m, complete = start + k, m - k, False
    ranges.reverse()
    return ranges


# --- appends --------------------------------------------------------------------------------


def append_leaf(
    frontier: Sequence[bytes], size: int, leaf: bytes
) -> tuple[list[bytes], list[tuple[int, int, bytes]]]:
    """Append ``leaf`` (a leaf hash) as leaf number ``size``.

    Returns the new frontier and the ``(level, index, hash)`` nodes this append completes.
    """
    frontier = list(frontier)
    carry, level, index = leaf, 0, size
    completed = [(0, index, leaf)]
    while size >> level & 1:
        carry = node_hash(frontier.pop(), carry)
        level += 1
        index >>= 1
        completed.append((level, index, carry))
    frontier.append(carry)
    return frontier, completed


def frontier_nodes(size: int) -> list[Node]:
    return range_nodes(0, size) if size else []


def pack(hashes: Sequence[bytes]) -> bytes:
    return b"".join(hashes)


def unpack(blob: bytes) -> list[bytes]:
    return [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]


class TreeBuilder:
    """Streams leaf hashes into a frontier: the root of any prefix in O(log n) memory."""

    def __init__(self) -> None:
        self.size = 0
        self.frontier: list[bytes] = []

    def append(self, leaf: bytes) -> None:
        self.frontier, _ = append_leaf(self.frontier, self.size, leaf)
        self.size += 1

    def root(self) -> bytes:
        return fold(self.frontier)


# --- verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2) ---------------------------------


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    if index >= size or index < 0:
        raise ProofError(f"index {index} is not below the tree size {size}")
    _check_hash(leaf, "leaf hash")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        _check_hash(p, "proof element")
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree allows")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the tree requires")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise ``ProofError`` unless ``proof`` shows ``leaf`` at ``index`` in the tree ``root``."""
    _check_hash(root, "root")
    if root_from_inclusion_proof(index, size, leaf, proof) != root:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise ``ProofError`` unless ``proof`` shows tree ``first`` is a prefix of ``second``."""
    if first < 1 or second < first:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    if first == second:
        if proof:
            raise ProofError("trees of equal size need an empty consistency proof")
        if first_root != second_root:
            raise ProofError("trees of equal size have different roots")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    _check_hash(first_root, "first root")
    _check_hash(second_root, "second root")
    for p in proof:
        _check_hash(p, "proof element")
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than the trees allow")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than the trees require")
    if fr != first_root:
        raise ProofError("consistency proof does not lead to the first root")
    if sr != second_root:
        raise ProofError("consistency proof does not lead to the second root")
