"""Machine-readable data-sharing agreements: model, loading, layout checks, signing, ODRL."""

from agreements.layouts import LayoutField, check_against_layouts, layout_problems
from agreements.load import (
    EXAMPLES_DIR,
    MAX_AGREEMENT_BYTES,
    AgreementError,
    example_paths,
    load_agreement,
    parse_agreement,
)
from agreements.model import (
    Agreement,
    Budget,
    DatasetTerms,
    Dimension,
    FieldTerms,
    LawfulBasis,
    NumericAttribute,
    OutputTerms,
    Party,
    Purpose,
    Retention,
    Signature,
    parse_retention,
)
from agreements.odrl import to_odrl
from agreements.schema_export import agreement_json_schema
from agreements.signing import (
    SignatureError,
    TrustedKey,
    TrustedSigners,
    canonical_bytes,
    key_id_for,
    public_key_b64,
    sign,
    verify_signatures,
)

__all__ = [
    "EXAMPLES_DIR",
    "MAX_AGREEMENT_BYTES",
    "Agreement",
    "AgreementError",
    "Budget",
    "DatasetTerms",
    "Dimension",
    "FieldTerms",
    "LawfulBasis",
    "LayoutField",
    "NumericAttribute",
    "OutputTerms",
    "Party",
    "Purpose",
    "Retention",
    "Signature",
    "SignatureError",
    "TrustedKey",
    "TrustedSigners",
    "agreement_json_schema",
    "canonical_bytes",
    "check_against_layouts",
    "example_paths",
    "key_id_for",
    "layout_problems",
    "load_agreement",
    "parse_agreement",
    "parse_retention",
    "public_key_b64",
    "sign",
    "to_odrl",
    "verify_signatures",
]
