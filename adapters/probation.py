"""Probation (HMPPS nDelius extracts, London region): one row per person x sentence.

The case reference number (CRN) is the service's person id (``local_id``); the NOMS (prison)
number is a national identifier of its own and gets its own canonical column ``noms_number``.
The event is the sentence date.
"""

from adapters.base import Adapter

ADAPTER = Adapter(
    dataset="probation",
    identifier_sources={
        "forename": "forename",
        "surname": "surname",
        "date_of_birth": "date_of_birth",
        "postcode": "home_postcode",
        "pnc_id": "pnc_id",
        "local_id": "crn",
        "noms_number": "noms_number",
    },
    event_date_source="sentence_date",
    borough_source="borough_gss_code",
)
