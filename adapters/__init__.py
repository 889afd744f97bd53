"""Adapters: one per agency extract type, turning uploads into validated canonical frames.

``ADAPTERS`` is the registry the hub looks datasets up in; adding an agency means adding one
module that declares an ``ADAPTER`` and listing it here.
"""

from __future__ import annotations

from adapters import ae, police, probation, schools, social_care, youth_justice
from adapters.base import Adapter

ADAPTERS: dict[str, Adapter] = {
    adapter.dataset: adapter
    for adapter in (
        police.ADAPTER,
        ae.ADAPTER,
        schools.ADAPTER,
        youth_justice.ADAPTER,
        social_care.ADAPTER,
        probation.ADAPTER,
    )
}


class UnknownDataset(KeyError):
    """No adapter exists for the dataset name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.known = sorted(ADAPTERS)
        super().__init__(f"unknown dataset {name!r}; known datasets: {', '.join(self.known)}")

    def __str__(self) -> str:
        return str(self.args[0])


def get_adapter(name: str) -> Adapter:
    """The adapter for ``name``; raises ``UnknownDataset`` listing the known names."""
    try:
        return ADAPTERS[name]
    except KeyError:
        raise UnknownDataset(name) from None


__all__ = ["ADAPTERS", "Adapter", "UnknownDataset", "get_adapter"]
