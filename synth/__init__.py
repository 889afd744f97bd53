"""Synthetic agency extracts for vru-hub: linked people, realistic recording errors, ground truth.

`generate` writes the six extracts plus `ground_truth.csv` and `synth_manifest.json`;
`generate_police_extract` writes one large police extract quickly, for benchmarks.
"""

from synth.generate import GenerationSummary, generate
from synth.police_extract import generate_police_extract

__all__ = ["GenerationSummary", "generate", "generate_police_extract"]
