"""Youth justice service caseloads (YJS case-management extracts): one row per offence/outcome.

The child is identified by the YJS child id (local), PNC id and UPN; the event is the offence.
"""

from adapters.base import Adapter

ADAPTER = Adapter(
    dataset="youth_justice",
    identifier_sources={
        "forename": "forename",
        "surname": "surname",
        "date_of_birth": "date_of_birth",
        "postcode": "home_postcode",
        "pnc_id": "pnc_id",
        "upn": "upn",
        "local_id": "yjs_child_id",
    },
    event_date_source="offence_date",
    borough_source="yjs_la_gss_code",
)
