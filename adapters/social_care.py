"""Children's social care (CIN census / SSDA903 extracts): one row per episode of need.

The child is identified by the LA child id (local), UPN and NHS number; the event is the
referral. Sex uses the CIN census codes 0/1/2/9 (not known, male, female, not specified).
"""

from adapters.base import Adapter

ADAPTER = Adapter(
    dataset="childrens_social_care",
    identifier_sources={
        "forename": "forename",
        "surname": "surname",
        "date_of_birth": "date_of_birth",
        "postcode": "home_postcode",
        "upn": "upn",
        "nhs_number": "nhs_number",
        "local_id": "la_child_id",
    },
    event_date_source="referral_date",
    borough_source="la_gss_code",
    sex_codes={"0": "not_known", "1": "male", "2": "female", "9": "not_specified"},
)
