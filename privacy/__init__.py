"""Privacy primitives for the hub: pure functions, no imports of ``hub``, ``adapters`` or
``agreements``.

``normalise`` (identifier normal forms, scalar and polars), ``secrets`` (master secret loading),
``keys`` (HKDF per linkage domain), ``matchkeys`` (the HMAC match-key cascade), ``generalise``
(age bands, districts, months).
"""
