"""Deterministic linkage on keyed hashes: the match-key cascade, clustered with union-find.

Why: the hub links records of one person across agencies without seeing who they are. Each
record carries the HMAC match keys of :mod:`privacy.matchkeys`; records sharing a key value are
the same person, strongest key first (as in the ONS match-key method). A weak key (name + DOB +
postcode...) can be shared by different people, so two guards stop it over-linking:

(a) **strong-identifier conflict** -- a key below level 1 never joins clusters whose strong
    identifiers disagree: if two of the clusters it would join each carry an ``nhs`` (or
    ``upn``, or ``pnc``) digest and those differ, the key value is not used at all. The check is
    also made on the merged result, so a chain of individually harmless links cannot join two
    NHS numbers either (the whole merged component is then left unmerged for this key).
(b) **implausible sharing within one upload** -- from ``plausibility_min_level`` (default 3)
    down, a key value is not trusted when, inside one upload, the records carrying it still sit
    in two or more clusters *and* carry two or more different forename identities (the
    ``canonical_name_dob`` key, else ``name_dob``). Within one extract an agency's own id and
    the level-1/2 keys have already joined a person's records, so two still-separate clusters
    with different forenames sharing surname + DOB + postcode are twins (or siblings), not a
    typo. A value carried by more than ``max_records_per_value`` records of one upload is not
    trusted either (a person has only so many records in one extract).

Level-1 keys (NHS number, UPN, PNC id, agency-local id) link unconditionally: they are issued
to one person and arrive only when their check character is valid. So two records with the
same NHS number but different sex and DOB are linked -- the NHS number wins (documented in
docs/linkage.md; the conflicting demographics stay visible to quality checks).

Person ids are ``HMAC-SHA256(derive_key(master, domain, version, "person-id"), record_id of
the cluster's oldest record)``, hex, truncated to 128 bits. So a merged cluster keeps its
oldest member's person id, a cluster that a withdrawal splits keeps the id on the piece with
the oldest record (the other pieces get back the ids they had before they were merged), ids
are reproducible from the state without storing a table, and ids of different domains or key
versions are unrelated. ``record_id`` must be an opaque hub id (never an identifier).

Digests are reduced to 64-bit fingerprints inside the linker (first 8 bytes of each HMAC): a
collision inside one key column needs ~4e9 distinct values to become likely.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import polars as pl
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.hmac import HMAC

from privacy.keys import derive_key
from privacy.matchkeys import KEY_SPACES, MATCH_KEYS

__all__ = [
    "DEFAULT_KEYS",
    "PERSON_ID_PURPOSE",
    "STRONG_SPACES",
    "CascadeConfig",
    "Linker",
    "fingerprints",
]

PERSON_ID_PURPOSE = "person-id"
STRONG_SPACES: tuple[str, ...] = ("nhs", "upn", "pnc")
_FORENAME_KEYS: tuple[str, ...] = ("canonical_name_dob", "name_dob")
_LEVEL = {spec.name: spec.level for spec in MATCH_KEYS}
_KEYS: tuple[str, ...] = tuple(spec.name for spec in MATCH_KEYS)
# Not used by default, both measured on synth after the synth fix (scale 0.5 and 1.0):
# - surname + DOB + postcode is exactly what twins in one household share, and across agencies
#   the within-upload plausibility guard cannot see them: 47 pairs added at precision 0.53.
# - forename initial + surname + DOB + sector joins twins who share an initial (12 of 876
#   level-3 pairs false at scale 1.0); without it the name-only Bloom pass finds all but 10 of
#   its true pairs, and no false ones.
UNTRUSTED_BY_DEFAULT: frozenset[str] = frozenset(
    {"surname_dob_postcode", "initial_surname_dob_sector"}
)
DEFAULT_KEYS: tuple[str, ...] = tuple(k for k in _KEYS if k not in UNTRUSTED_BY_DEFAULT)

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]


@dataclass(frozen=True)
class CascadeConfig:
    """Thresholds of the over-linking guards (see the module docstring)."""

    plausibility_min_level: int = 3
    max_forenames_per_value: int = 1
    max_records_per_value: int = 50
    keys: tuple[str, ...] = DEFAULT_KEYS

    def __post_init__(self) -> None:
        unknown = [k for k in self.keys if k not in _LEVEL]
        if unknown:
            raise ValueError(f"unknown match keys {unknown}; known: {list(_KEYS)}")


def fingerprints(digests: pl.Series) -> U64:
    """64-bit fingerprints of a ``pl.Binary`` digest column; 0 means null."""
    if digests.len() == 0:
        return np.zeros(0, dtype=np.uint64)
    fp = (
        digests.cast(pl.Binary)
        .bin.slice(0, 8)
        .bin.reinterpret(dtype=pl.UInt64, endianness="little")
        .fill_null(0)
        .to_numpy()
        .astype(np.uint64, copy=True)
    )
    # A real digest whose first 8 bytes are zero would read as null: map it to 1.
    present = digests.is_not_null().to_numpy()
    fp[present & (fp == 0)] = 1
    return np.ascontiguousarray(fp)


def _components(n: int, a: I64, b: I64) -> I64:
    """Connected components of ``n`` nodes under edges (a, b): each node -> its minimum node."""
    parent = np.arange(n, dtype=np.int64)
    if a.size == 0:
        return parent
    while True:
        lo = np.minimum(parent[a], parent[b])
        before = parent.copy()
        np.minimum.at(parent, parent[a], lo)
        np.minimum.at(parent, parent[b], lo)
        np.minimum.at(parent, a, lo)
        np.minimum.at(parent, b, lo)
        while True:  # pointer jumping
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
        if np.array_equal(parent, before):
            return parent


def _distinct_count(group: I64, value: U64 | I64, n_groups: int) -> I64:
    """Number of distinct non-zero ``value`` per ``group`` (a hash aggregation in polars:
    several times faster than sorting both columns in numpy)."""
    keep = value != 0
    out = np.zeros(n_groups, dtype=np.int64)
    if not keep.any():
        return out
    counts = (
        pl.DataFrame({"g": group[keep], "v": value[keep].astype(np.uint64, copy=False)})
        .group_by("g")
        .agg(pl.col("v").n_unique())
    )
    out[counts["g"].to_numpy()] = counts["v"].to_numpy()
    return out


@dataclass
class _Step:
    key: str
    level: int
    labels: I64


@dataclass
class _State:
    record_ids: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    upload: list[int] = field(default_factory=list)
    upload_names: dict[str, int] = field(default_factory=dict)
    alive: list[bool] = field(default_factory=list)


class Linker:
    """Persistent, incremental match-key linkage for one linkage domain and key version.

    ``add(records)`` links one upload (a frame with ``record_id`` (String, unique in the domain),
    ``upload`` (String) and any of the :data:`privacy.matchkeys.MATCH_KEYS` digest columns,
    ``pl.Binary``, null where missing). Existing clusters are never split by an add; only
    clusters sharing a key value with the new records are re-examined. ``remove(record_ids)``
    withdraws records and re-clusters, from scratch, only the persons they belonged to.
    """

    def __init__(
        self,
        master_secret: bytes,
        domain: str,
        key_version: int,
        config: CascadeConfig | None = None,
    ) -> None:
        self.domain = domain
        self.key_version = key_version
        self.config = config or CascadeConfig()
        key = derive_key(
            master_secret, domain=domain, version=key_version, purpose=PERSON_ID_PURPOSE
        )
        self._hmac = HMAC(key, SHA256())
        self._state = _State()
        self._fp = np.zeros((0, len(self.config.keys)), dtype=np.uint64)
        self._labels = np.zeros(0, dtype=np.int64)  # cluster = index of its oldest record
        self._link_key = np.full(0, -1, dtype=np.int64)  # key index that first linked a record
        self._last_members = np.zeros(0, dtype=np.int64)  # re-examined by the last change
        # link keys of stages outside the cascade (join()); key index len(keys) + position
        self._outside_keys: list[str] = []

    def __repr__(self) -> str:  # never show key material
        return f"Linker(domain={self.domain!r}, key_version={self.key_version}, n={len(self)})"

    def __len__(self) -> int:
        return int(sum(self._state.alive))

    # ---------------------------------------------------------------- public API

    def add(self, records: pl.DataFrame) -> pl.DataFrame:
        """Link one upload. Records whose ``record_id`` is already present are ignored (the same
        upload twice is a no-op). Returns :meth:`assignments` for the given records."""
        for column in ("record_id", "upload"):
            if column not in records.columns:
                raise ValueError(f"records need a {column!r} column")
        ids = records.get_column("record_id").cast(pl.String)
        if ids.null_count():
            raise ValueError("record_id must not be null")
        if ids.n_unique() != ids.len():
            raise ValueError("record_id values must be unique within one add()")
        self._last_members = np.zeros(0, dtype=np.int64)
        known = np.fromiter((i in self._state.index for i in ids.to_list()), bool, ids.len())
        fresh = records.filter(pl.Series(~known))
        if fresh.height:
            self._append(fresh)
        return self.assignments(ids.to_list())

    def remove(self, record_ids: Iterable[str]) -> int:
        """Withdraw records; re-cluster only the persons they belonged to. Returns how many
        records were removed (unknown ids are ignored)."""
        self._last_members = np.zeros(0, dtype=np.int64)
        gone = [self._state.index[r] for r in record_ids if r in self._state.index]
        gone = [g for g in gone if self._state.alive[g]]
        if not gone:
            return 0
        alive = np.array(self._state.alive, dtype=bool)
        touched = np.unique(self._labels[np.array(gone, dtype=np.int64)])
        for g in gone:
            self._state.alive[g] = False
        alive[gone] = False
        members = np.flatnonzero(np.isin(self._labels, touched) & alive)
        self._labels[gone] = -1
        self._link_key[gone] = -1
        if members.size:
            self._recluster(members, np.arange(members.size, dtype=np.int64))
        return len(gone)

    def restore(self, records: pl.DataFrame) -> None:
        """Load records already linked earlier (e.g. at start, from the hub's tables) without
        re-linking them: ``record_id``, ``upload``, the key columns, ``person`` (any value that
        is equal for the records of one person) and ``link_key`` (String or null). Records
        must come oldest first (the order they were first added), so that person ids
        (:meth:`person_id` of each person's oldest record) come out as they were stored."""
        if len(self._state.record_ids):
            raise ValueError("restore() only into an empty Linker")
        st = self._state
        ids = records.get_column("record_id").cast(pl.String).to_list()
        st.record_ids = ids
        st.index = {rid: i for i, rid in enumerate(ids)}
        if len(st.index) != len(ids):
            raise ValueError("record_id values must be unique")
        uploads = records.get_column("upload").cast(pl.String)
        names, codes = np.unique(uploads.to_numpy().astype(str), return_inverse=True)
        st.upload_names = {str(u): i for i, u in enumerate(names)}
        st.upload = codes.astype(np.int64).tolist()
        st.alive = [True] * len(ids)
        self._fp = self._fingerprint_matrix(records)
        person = records.get_column("person")
        n = len(ids)
        first = (
            pl.DataFrame({"p": person, "i": np.arange(n, dtype=np.int64)})
            .with_columns(pl.col("i").min().over("p").alias("oldest"))
            .get_column("oldest")
            .to_numpy()
        )
        self._labels = first.astype(np.int64)
        keys = records.get_column("link_key").cast(pl.String).to_list()
        self._link_key = np.array([self._key_index(k) if k else -1 for k in keys], np.int64)
        self._last_members = np.arange(n, dtype=np.int64)

    def relink(self, record_ids: Iterable[str]) -> None:
        """Re-cluster from scratch the persons holding these records (e.g. after records of
        theirs were deleted while the linker was not running)."""
        idx = [self._state.index[r] for r in record_ids if r in self._state.index]
        alive = np.array(self._state.alive, dtype=bool)
        touched = np.unique(self._labels[np.array(idx, dtype=np.int64)])
        members = np.flatnonzero(np.isin(self._labels, touched) & alive)
        if members.size:
            self._recluster(members, np.arange(members.size, dtype=np.int64))
        else:
            self._last_members = members

    def join(self, labels: npt.ArrayLike, link_key: str) -> list[str]:
        """Join clusters as a stage outside the cascade decided (the keyed anchors of
        ``privacy.linkage.anchors``). ``labels`` holds one label per live record, in the order
        of :meth:`labels`; records with equal labels become one person, and a label may only
        put whole clusters together. Records that were alone get ``link_key``.

        Joined clusters stay joined through later adds (which never split a cluster); remove
        and relink re-cluster the persons they touch by the cascade alone, so run the stage
        again after them. Returns the ids of every record of the persons it joined."""
        idx = np.flatnonzero(np.array(self._state.alive, dtype=bool))
        new = np.asarray(labels, dtype=np.int64)
        if new.shape != idx.shape:
            raise ValueError(f"join() needs one label per live record ({idx.size})")
        old = self._labels[idx]
        if idx.size == 0:
            return []
        # per old cluster, one new label; per new label, its oldest record becomes the label
        check = pl.DataFrame({"old": old, "new": new, "i": idx})
        if check.group_by("old").agg(pl.col("new").n_unique()).get_column("new").max() != 1:
            raise ValueError("join() labels must not split a cluster")
        oldest = check.select(pl.col("i").min().over("new")).to_series().to_numpy()
        changed = oldest != old
        if not changed.any():
            return []
        sizes = check.select(pl.len().over("new")).to_series().to_numpy()
        self._labels[idx] = oldest
        alone = (self._link_key[idx] == -1) & (sizes > 1)
        self._link_key[idx[alone]] = self._key_index(link_key)
        # every record of a joined person: its person, link key or rank may have changed
        members = idx[np.isin(oldest, oldest[changed])]
        self._last_members = members
        return [self._state.record_ids[i] for i in members.tolist()]

    def _key_index(self, link_key: str) -> int:
        """The index of a link key: a cascade key, or a stage's key registered on first use."""
        if link_key in self.config.keys:
            return self.config.keys.index(link_key)
        if link_key not in self._outside_keys:
            self._outside_keys.append(link_key)
        return len(self.config.keys) + self._outside_keys.index(link_key)

    def last_changed(self) -> list[str]:
        """Ids of the live records the last add/remove/relink re-examined: every record whose
        person id or link key may have changed (withdrawn records are not included)."""
        alive = self._state.alive
        return [self._state.record_ids[i] for i in self._last_members.tolist() if alive[i]]

    def person_id(self, record_index: int) -> str:
        mac = self._hmac.copy()
        mac.update(self._state.record_ids[record_index].encode("utf-8"))
        return mac.finalize()[:16].hex()

    def assignments(self, record_ids: Sequence[str] | None = None) -> pl.DataFrame:
        """``record_id``, ``person_id`` and ``link_key`` (the match key that first joined the
        record to another, null if it is alone) for the given (default: all live) records."""
        if record_ids is None:
            idx = np.flatnonzero(np.array(self._state.alive, dtype=bool))
        else:
            idx = np.array([self._state.index[r] for r in record_ids], dtype=np.int64)
        labels = self._labels[idx]
        uniq, inverse = np.unique(labels, return_inverse=True)
        pids = [self.person_id(int(u)) for u in uniq]
        keys = [None, *self.config.keys, *self._outside_keys]
        return pl.DataFrame(
            {
                "record_id": [self._state.record_ids[i] for i in idx],
                "person_id": pl.Series([pids[i] for i in inverse], dtype=pl.String),
                "link_key": pl.Series([keys[k + 1] for k in self._link_key[idx]], dtype=pl.String),
            }
        )

    def labels(self) -> tuple[list[str], I64]:
        """Live record ids and their cluster labels (index of the cluster's oldest record)."""
        idx = np.flatnonzero(np.array(self._state.alive, dtype=bool))
        return [self._state.record_ids[i] for i in idx], self._labels[idx].copy()

    def trace(self, records: pl.DataFrame) -> list[tuple[str, int, I64]]:
        """Cluster ``records`` from scratch (not stored) and return the labels after every key:
        ``[(key, level, labels), ...]``, for quality reporting per cascade level."""
        fp = self._fingerprint_matrix(records)
        uploads = records.get_column("upload").cast(pl.String)
        _, upload = np.unique(uploads.to_numpy().astype(str), return_inverse=True)
        steps: list[_Step] = []
        _, _labels = self._cascade(fp, upload.astype(np.int64), None, steps)
        return [(s.key, s.level, s.labels) for s in steps]

    # ---------------------------------------------------------------- internals

    def _fingerprint_matrix(self, records: pl.DataFrame) -> U64:
        n = records.height
        out = np.zeros((n, len(self.config.keys)), dtype=np.uint64)
        for j, key in enumerate(self.config.keys):
            if key in records.columns:
                column = records.get_column(key)
                if column.dtype == pl.UInt64:  # already fingerprints (privacy.linkage.stored)
                    out[:, j] = column.fill_null(0).to_numpy()
                else:
                    out[:, j] = fingerprints(column)
        return out

    def _append(self, fresh: pl.DataFrame) -> None:
        st = self._state
        start = len(st.record_ids)
        ids = fresh.get_column("record_id").cast(pl.String).to_list()
        for u in fresh.get_column("upload").cast(pl.String).to_list():
            st.upload.append(st.upload_names.setdefault(u, len(st.upload_names)))
        for i, rid in enumerate(ids):
            st.index[rid] = start + i
        st.record_ids.extend(ids)
        st.alive.extend([True] * len(ids))
        n_new = len(ids)
        self._fp = np.vstack([self._fp, self._fingerprint_matrix(fresh)])
        self._labels = np.concatenate([self._labels, np.arange(start, start + n_new)])
        self._link_key = np.concatenate([self._link_key, np.full(n_new, -1, dtype=np.int64)])
        new_idx = np.arange(start, start + n_new, dtype=np.int64)
        if start == 0:
            self._recluster(new_idx, np.arange(n_new, dtype=np.int64))
            return
        # Old clusters sharing any key value with the new records take part (kept whole).
        alive = np.array(st.alive[:start], dtype=bool)
        touched_rows = np.zeros(start, dtype=bool)
        for j in range(self._fp.shape[1]):
            new_vals = self._fp[new_idx, j]
            new_vals = new_vals[new_vals != 0]
            if new_vals.size:
                touched_rows |= np.isin(self._fp[:start, j], new_vals)
        touched_rows &= alive
        touched = np.unique(self._labels[:start][touched_rows])
        old_members = np.flatnonzero(np.isin(self._labels[:start], touched) & alive)
        members = np.concatenate([old_members, new_idx])
        # initial local labels: old records by their cluster, new ones alone
        _, old_local = np.unique(self._labels[old_members], return_inverse=True)
        n_old_clusters = int(old_local.max()) + 1 if old_local.size else 0
        initial = np.concatenate(
            [old_local.astype(np.int64), n_old_clusters + np.arange(n_new, dtype=np.int64)]
        )
        self._recluster(members, initial)

    def _recluster(self, members: I64, initial: I64) -> None:
        """Run the cascade over ``members`` (global indices, oldest first within clusters)
        starting from local cluster labels ``initial``; store the result."""
        order = np.argsort(members, kind="stable")
        members, initial = members[order], initial[order]
        self._last_members = members
        fp = self._fp[members]
        upload = np.array(self._state.upload, dtype=np.int64)[members]
        first_key, local = self._cascade(fp, upload, initial, None)
        # cluster label = global index of its oldest (smallest index) member
        n = members.size
        oldest = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(oldest, local, members)
        self._labels[members] = oldest[local]
        # -2: linked before this run, keep the key recorded then
        self._link_key[members] = np.where(first_key == -2, self._link_key[members], first_key)
        # a record whose cluster is a singleton after a withdrawal is no longer linked
        sizes = np.bincount(local, minlength=n)
        self._link_key[members[sizes[local] == 1]] = -1

    def _cascade(
        self, fp: U64, upload: I64, initial: I64 | None, steps: list[_Step] | None
    ) -> tuple[I64, I64]:
        """The guarded cascade on a fingerprint matrix. Returns (key index that first linked
        each record or -1, component label per record in 0..n-1)."""
        cfg = self.config
        n = fp.shape[0]
        labels = np.arange(n, dtype=np.int64) if initial is None else initial.copy()
        first_key = np.full(n, -1, dtype=np.int64)
        if initial is not None:
            sizes = np.bincount(labels, minlength=n)
            first_key[sizes[labels] > 1] = -2  # already linked before this run
        col = {k: j for j, k in enumerate(cfg.keys)}
        strong = [col[s] for s in STRONG_SPACES if s in col]
        forename_cols = [col[k] for k in _FORENAME_KEYS if k in col]
        forename = np.zeros(n, dtype=np.uint64)
        for j in reversed(forename_cols):
            forename = np.where(fp[:, j] != 0, fp[:, j], forename)

        def reps(lab: I64) -> list[U64]:
            """Per strong space, one representative digest per cluster label (0 = none)."""
            out = []
            for j in strong:
                r = np.zeros(n, dtype=np.uint64)
                has = fp[:, j] != 0
                # max over the cluster: deterministic; any disagreement is caught separately
                np.maximum.at(r, lab[has], fp[has, j])
                out.append(r)
            return out

        for key in cfg.keys:
            j = col[key]
            level = _LEVEL[key]
            # every column in this key's space (upn and upn_former share the upn space)
            same = [col[k] for k in cfg.keys if KEY_SPACES[k] == KEY_SPACES[key]]
            if same[0] != j:
                continue  # already linked together with the first column of its space
            parts = [np.flatnonzero(fp[:, c] != 0) for c in same]
            rows = np.concatenate(parts)
            values = np.concatenate([fp[p, c] for p, c in zip(parts, same, strict=True)])
            if rows.size < 2:
                if steps is not None:
                    steps.append(_Step(key, level, labels.copy()))
                continue
            _, group = np.unique(values, return_inverse=True)
            group = group.astype(np.int64)
            n_groups = int(group.max()) + 1
            lab = labels[rows]
            n_labels = _distinct_count(group, lab.astype(np.uint64) + np.uint64(1), n_groups)
            trusted = n_labels > 1
            if level > 1:
                for r in reps(labels):
                    trusted &= _distinct_count(group, r[lab], n_groups) <= 1
            if level >= cfg.plausibility_min_level:
                gu = group * (int(upload.max()) + 1) + upload[rows]
                _, gu_idx = np.unique(gu, return_inverse=True)
                gu_idx = gu_idx.astype(np.int64)
                n_gu = int(gu_idx.max()) + 1
                to_group = np.zeros(n_gu, dtype=np.int64)
                to_group[gu_idx] = group
                gu_labels = _distinct_count(gu_idx, lab.astype(np.uint64) + np.uint64(1), n_gu)
                gu_fore = _distinct_count(gu_idx, forename[rows], n_gu)
                gu_size = np.bincount(gu_idx, minlength=n_gu)
                bad = ((gu_labels > 1) & (gu_fore > cfg.max_forenames_per_value)) | (
                    gu_size > cfg.max_records_per_value
                )
                trusted[to_group[bad]] = False
            use = trusted[group]
            if not use.any():
                if steps is not None:
                    steps.append(_Step(key, level, labels.copy()))
                continue
            # star edges: every label in a trusted group -> the group's first label
            g_use, l_use = group[use], lab[use]
            head = np.full(n_groups, -1, dtype=np.int64)
            head[g_use[::-1]] = l_use[::-1]
            comp = _components(n, l_use, head[g_use])
            if level > 1:
                # chains of individually harmless links must not join two strong ids either
                bad_comp = np.zeros(n, dtype=bool)
                for r in reps(labels):
                    has = r != 0
                    nodes = np.flatnonzero(has)
                    cnt = _distinct_count(comp[nodes], r[nodes], n)
                    bad_comp |= cnt > 1
                comp = np.where(bad_comp[comp], np.arange(n, dtype=np.int64), comp)
            new_labels = comp[labels]
            changed = (
                np.bincount(new_labels, minlength=n)[new_labels]
                > np.bincount(labels, minlength=n)[labels]
            )
            first_key[changed & (first_key == -1)] = j
            labels = new_labels
            if steps is not None:
                steps.append(_Step(key, level, labels.copy()))
        _, local = np.unique(labels, return_inverse=True)
        return first_key, local.astype(np.int64)
