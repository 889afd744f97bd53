"""Small fake extracts shared by the adapter tests (values are invented; NHS numbers are valid)."""

from __future__ import annotations

POLICE_HEADER = (
    "crime_reference,person_role,police_person_id,pnc_id,forename,surname,date_of_birth,"
    "home_postcode,sex,age_at_offence,offence_datetime_from,reported_date,ho_offence_code,"
    "ho_offence_group,mps_major_text,mps_minor_text,knife_sharp_instrument_flag,"
    "knife_injury_flag,firearm_flag,domestic_abuse_flag,borough_gss_code"
)


def police_row(
    *,
    ref: str = "CR0012345",
    role: str = "victim",
    person: str = "P100234",
    pnc: str = "2019/1234567X",
    forename: str = "Amara",
    surname: str = "Okafor",
    dob: str = "2006-03-14",
    postcode: str = "N1 9GU",
    sex: str = "female",
    age: str = "17",
    offence: str = "2024-02-10 21:15:00",
    reported: str = "11/02/2024",
    code: str = "8N",
    group: str = "violence_with_injury",
    knife: str = "Y",
    borough: str = "E09000019",
) -> str:
    return ",".join(
        [
            ref,
            role,
            person,
            pnc,
            forename,
            surname,
            dob,
            postcode,
            sex,
            age,
            offence,
            reported,
            code,
            group,
            "Violence Against the Person",
            "Violence with Injury",
            knife,
            "no",
            "0",
            "false",
            borough,
        ]
    )


def police_csv(*rows: str) -> str:
    return "\n".join([POLICE_HEADER, *rows]) + "\n"
