"""Valid synthetic identifiers: NHS numbers (mod 11), UPNs (DfE check letter), PNC ids (check
letter), probation CRNs and prison (NOMS) numbers."""

from __future__ import annotations

import random
from collections.abc import Callable

_UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"  # 23 letters: DfE check-letter alphabet (no I O S)
_PNC_LETTERS = "ZABCDEFGHJKLMNPQRTUVWXY"  # PNC check character for (year*10^7 + serial) mod 23


def nhs_check_digit(first_nine: str) -> int | None:
    """Modulus-11 check digit for the first nine digits, or None when no valid number exists."""
    total = sum(int(d) * w for d, w in zip(first_nine, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def is_valid_nhs_number(value: str) -> bool:
    if len(value) != 10 or not value.isdigit():
        return False
    return nhs_check_digit(value[:9]) == int(value[9])


def random_nhs_number(rng: random.Random) -> str:
    """A valid number in the 999 range, which NHS England reserves for test data."""
    while True:
        first = "999" + f"{rng.randrange(1_000_000):06d}"
        check = nhs_check_digit(first)
        if check is not None:
            return first + str(check)


def upn_check_letter(body: str) -> str:
    """DfE check letter for the 12 characters after it (weights 2..13, mod 23)."""
    total = 0
    for weight, ch in enumerate(body, start=2):
        value = int(ch) if ch.isdigit() else _UPN_LETTERS.index(ch)
        total += value * weight
    return _UPN_LETTERS[total % 23]


def is_valid_upn(value: str) -> bool:
    return len(value) == 13 and value[0] == upn_check_letter(value[1:])


def random_upn(rng: random.Random, la_code: str, year_of_entry: int) -> str:
    """Permanent UPN: check letter + LA(3) + establishment(4) + year allocated(2) + serial(3)."""
    estab = rng.randrange(2000, 7000)
    body = f"{la_code}{estab:04d}{year_of_entry % 100:02d}{rng.randrange(1000):03d}"
    return upn_check_letter(body) + body


def pnc_check_letter(year: int, serial: int) -> str:
    return _PNC_LETTERS[((year % 100) * 10_000_000 + serial) % 23]


def random_pnc_id(rng: random.Random, year: int) -> str:
    """PNC id as `YYYY/NNNNNNNA` (four-digit year of first arrest, 7-digit serial, check letter)."""
    serial = rng.randrange(1, 10_000_000)
    return f"{year:04d}/{serial:07d}{pnc_check_letter(year, serial)}"


def random_crn(rng: random.Random) -> str:
    return f"{rng.choice('ABCDEFGHJKLMNPRSTVWX')}{rng.randrange(1_000_000):06d}"


def random_noms(rng: random.Random) -> str:
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    return (
        f"{rng.choice('AG')}{rng.randrange(10_000):04d}{rng.choice(letters)}{rng.choice(letters)}"
    )


class IssuedIdentifiers:
    """Real identifiers are unique per person; random draws are not (a few hundred thousand
    people drawn from the 999 test range of NHS numbers share thousands). Every identifier a
    generation hands out goes through ``unique``, which draws again on a clash."""

    def __init__(self) -> None:
        self._issued: set[str] = set()

    def unique(self, draw: Callable[[], str]) -> str:
        for _ in range(1_000):
            value = draw()
            if value not in self._issued:
                self._issued.add(value)
                return value
        raise RuntimeError(
            "the synthetic identifier space is nearly exhausted; generate at a smaller scale"
        )
