"""School exclusions and suspensions (school census / local MIS): one row per exclusion.

Pupils are identified by their UPN (and former UPN) and legal names. The borough comes from the
school's 3-digit DfE LA code, translated to the GSS code with ``reference/dfe_la_codes.csv``;
a code outside London is an error because the extract should only hold London schools.
"""

from adapters.base import Adapter
from adapters.schema import dfe_la_codes

ADAPTER = Adapter(
    dataset="school_exclusions",
    identifier_sources={
        "forename": "legal_forename",
        "surname": "legal_surname",
        "upn": "upn",
        "former_upn": "former_upn",
        "date_of_birth": "date_of_birth",
        "postcode": "home_postcode",
    },
    event_date_source="exclusion_start_date",
    borough_source="la_code_old",
    borough_codes=dfe_la_codes(),
    sex_codes={"m": "male", "f": "female"},
)
