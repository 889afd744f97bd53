"""Differentially-private releases: pure mechanisms, accuracy, bounds, post-processing, budgets.

Nothing here imports ``hub``. The hub computes the bounded contingency table in SQL, calls
these functions to noise it, and records budget spends in its database.
"""
