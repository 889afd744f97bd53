"""The Merkle tree: RFC 6962/9162 conformance vectors and a naive reference implementation."""

from __future__ import annotations

import base64
import hashlib
import json
from functools import cache
from pathlib import Path

import pytest

from hub.audit import merkle

VECTORS = Path(__file__).resolve().parents[2] / ".." / "shared" / "conformance" / "rfc6962-merkle"


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _cases(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).glob("*/*.json")) if VECTORS.exists() else []


needs_vectors = pytest.mark.skipif(not VECTORS.exists(), reason="../shared is not present")


@needs_vectors
@pytest.mark.parametrize("path", _cases("inclusion"), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_inclusion_vectors(path: Path) -> None:
    case = json.loads(path.read_text())
    proof = [_b64(p) for p in case["proof"] or []]
    args = (case["leafIdx"], case["treeSize"], _b64(case["leafHash"]), proof, _b64(case["root"]))
    if case["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)


@needs_vectors
@pytest.mark.parametrize("path", _cases("consistency"), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_consistency_vectors(path: Path) -> None:
    case = json.loads(path.read_text())
    proof = [_b64(p) for p in case["proof"] or []]
    args = (case["size1"], case["size2"], _b64(case["root1"]), _b64(case["root2"]), proof)
    if case["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


@needs_vectors
def test_there_are_vectors_of_both_outcomes() -> None:
    outcomes = {json.loads(p.read_text())["wantErr"] for p in _cases("consistency")}
    assert outcomes == {True, False}
    assert len(_cases("inclusion")) > 10


# --- a naive RFC 6962 implementation, straight from section 2.1 ----------------------------

LEAVES = [merkle.leaf_hash(f"event {i}".encode()) for i in range(200)]


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@cache
def mth(start: int, end: int) -> bytes:
    n = end - start
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return LEAVES[start]
    k = _k(n)
    return merkle.node_hash(mth(start, start + k), mth(start + k, end))


def path(m: int, start: int, end: int) -> list[bytes]:
    n = end - start
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*path(m, start, start + k), mth(start + k, end)]
    return [*path(m - k, start + k, end), mth(start, start + k)]


def subproof(m: int, start: int, end: int, complete: bool) -> list[bytes]:
    n = end - start
    if m == n:
        return [] if complete else [mth(start, end)]
    k = _k(n)
    if m <= k:
        return [*subproof(m, start, start + k, complete), mth(start + k, end)]
    return [*subproof(m - k, start + k, end, False), mth(start, start + k)]


def stored_nodes(size: int) -> dict[merkle.Node, bytes]:
    """The nodes the ledger stores for a tree of ``size`` leaves, built by appends."""
    nodes: dict[merkle.Node, bytes] = {}
    frontier: list[bytes] = []
    for i in range(size):
        frontier, completed = merkle.append_leaf(frontier, i, LEAVES[i])
        nodes.update({(lv, idx): h for lv, idx, h in completed})
    return nodes


ALL_NODES = stored_nodes(200)


def test_roots_and_frontier_match_the_naive_tree_for_sizes_0_to_200() -> None:
    builder = merkle.TreeBuilder()
    assert builder.root() == mth(0, 0)
    for n in range(1, 201):
        builder.append(LEAVES[n - 1])
        assert builder.root() == mth(0, n)
        assert merkle.range_hash(0, n, ALL_NODES) == mth(0, n)
        assert len(merkle.range_nodes(0, n)) == bin(n).count("1")  # O(log n) reads


def test_appends_store_only_complete_subtrees() -> None:
    nodes = stored_nodes(13)
    for (level, index), value in nodes.items():
        assert (index + 1) << level <= 13
        assert value == mth(index << level, (index + 1) << level)


def test_inclusion_proofs_match_the_naive_path_and_verify() -> None:
    for n in range(1, 201):
        for m in range(n):
            ranges = merkle.inclusion_ranges(m, n)
            proof = [merkle.range_hash(a, b, ALL_NODES) for a, b in ranges]
            assert proof == path(m, 0, n), (m, n)
            merkle.verify_inclusion(m, n, LEAVES[m], proof, mth(0, n))
            assert len(merkle.nodes_for_ranges(ranges)) <= 2 * n.bit_length() ** 2


@pytest.mark.parametrize("n", range(1, 201))
def test_consistency_proofs_match_the_naive_proof_and_verify(n: int) -> None:
    for m in range(1, n + 1):
        proof = [merkle.range_hash(a, b, ALL_NODES) for a, b in merkle.consistency_ranges(m, n)]
        assert proof == ([] if m == n else subproof(m, 0, n, True)), (m, n)
        merkle.verify_consistency(m, n, mth(0, m), mth(0, n), proof)


def test_altered_proofs_are_rejected() -> None:
    n, m = 37, 11
    proof = path(m, 0, n)
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 1]) + bad[i][1:]
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(m, n, LEAVES[m], bad, mth(0, n))
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(m + 1, n, LEAVES[m], proof, mth(0, n))
    cproof = subproof(m, 0, n, True)
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(m, n, mth(0, m), mth(0, n), cproof[:-1])
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(m, n, mth(0, m + 1), mth(0, n), cproof)


def test_impossible_parameters_are_refused() -> None:
    with pytest.raises(merkle.ProofError):
        merkle.inclusion_ranges(5, 5)
    with pytest.raises(merkle.ProofError):
        merkle.consistency_ranges(0, 5)
    with pytest.raises(merkle.ProofError):
        merkle.consistency_ranges(6, 5)
