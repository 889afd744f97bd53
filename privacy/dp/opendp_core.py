"""The parts of OpenDP the hub uses, without ``opendp.prelude``.

The prelude also imports OpenDP's scikit-learn, polars and ibis integrations: 139 MB of
resident memory and about a second at every start of every hub process, none of it used here.
Modules in this package import ``from privacy.dp import opendp_core as dp`` and write
``dp.m...``, ``dp.vector_domain(...)`` exactly as with the prelude. They import it inside the
functions that build or calibrate a measurement, not at the top: OpenDP's native library is
~9 MB resident, and a process that never releases anything (an ingest-only hub, the linker)
should not carry it. The first release in a process loads it.
"""

from __future__ import annotations

import opendp.measurements as m
from opendp.accuracy import (
    accuracy_to_discrete_laplacian_scale,
    accuracy_to_laplacian_scale,
    discrete_laplacian_scale_to_accuracy,
    laplacian_scale_to_accuracy,
)
from opendp.domains import atom_domain, vector_domain
from opendp.measures import max_divergence
from opendp.metrics import l1_distance, symmetric_distance
from opendp.mod import Measurement, Transformation, enable_features
from opendp.typing import f64, i64

enable_features("contrib")

__all__ = [
    "Measurement",
    "Transformation",
    "accuracy_to_discrete_laplacian_scale",
    "accuracy_to_laplacian_scale",
    "atom_domain",
    "discrete_laplacian_scale_to_accuracy",
    "enable_features",
    "f64",
    "i64",
    "l1_distance",
    "laplacian_scale_to_accuracy",
    "m",
    "max_divergence",
    "symmetric_distance",
    "vector_domain",
]
