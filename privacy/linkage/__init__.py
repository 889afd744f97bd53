"""Linkage of pseudonymised records: the match-key cascade, keyed Bloom-filter fuzzy matching,
and pairwise quality measurement. Pure domain code; the hub wires it into ingest."""
