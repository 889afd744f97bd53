"""Emergency department assault attendances (ISTV minimum dataset / ECDS): one row per attendance.

The event is the arrival at the department (the assault time is often estimated or missing);
the borough is where the assault happened, as geocoded by the trust.
"""

from adapters.base import Adapter

ADAPTER = Adapter(
    dataset="ae_istv_assaults",
    identifier_sources={
        "nhs_number": "nhs_number",
        "date_of_birth": "date_of_birth",
        "postcode": "postcode_of_usual_address",
        "record_ref": "attendance_id",
    },
    event_date_source="arrival_datetime",
    borough_source="incident_borough_gss_code",
    age_fields=("age_at_attendance",),
)
