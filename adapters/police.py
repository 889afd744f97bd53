"""Police recorded violence offences (MPS CONNECT/CRIS via MOPAC): one row per crime x person-role.

The event is the offence (committed-from date/time); the police person id is the force's local
person identifier and the crime reference the record reference.
"""

from adapters.base import Adapter

ADAPTER = Adapter(
    dataset="police_violence_offences",
    identifier_sources={
        "forename": "forename",
        "surname": "surname",
        "date_of_birth": "date_of_birth",
        "postcode": "home_postcode",
        "pnc_id": "pnc_id",
        "local_id": "police_person_id",
        "record_ref": "crime_reference",
    },
    event_date_source="offence_datetime_from",
    borough_source="borough_gss_code",
    age_fields=("age_at_offence",),
)
