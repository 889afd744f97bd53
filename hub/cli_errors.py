"""How the ``hub`` command reports a mistake: one line, ``Error: ...`` on stderr, exit code 1.

Commands check what they can up front (option callbacks, paths) and raise ``UserError`` with a
message that says what was wrong and what to do next. As a safety net, ``HubGroup`` (the root
command) reports the errors a command meets through no fault of its code the same way: a file
that cannot be read or written (``OSError``), a value that cannot be parsed (``ValueError``), a
``HUB_*`` setting out of range, input nested too deeply. ``HUB_DEBUG=1`` shows the traceback
instead, for a bug report.

Messages never carry file contents: an ``OSError`` is reported by its path and reason, a
setting by its variable and the rule it breaks, never its value (it may be a secret such as
``HUB_MASTER_SECRET``).
"""

from __future__ import annotations

import errno
import math
import os
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

if TYPE_CHECKING:
    from pydantic import ValidationError

    from hub.settings import Settings

DEBUG_VARIABLE = "HUB_DEBUG"
DEBUG_HELP = (
    f"On an unexpected error the command prints one line and exits 1; set {DEBUG_VARIABLE}=1 "
    "to see the traceback."
)
_MAX_MESSAGE = 300

err_console = Console(stderr=True, soft_wrap=True, highlight=False)


class UserError(Exception):
    """A mistake the user can fix; the message says what was wrong and what to do next."""


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "").strip().lower() in {"1", "true", "yes", "on"}


def print_error(message: str) -> None:
    """``Error: <message>`` on stderr; the message is printed as is (never read as markup)."""
    err_console.print(Text.assemble(("Error:", "bold red"), " ", message))


# Option checks ------------------------------------------------------------------------------
def finite_number(
    *,
    above: float | None = None,
    at_least: float | None = None,
    below: float | None = None,
    example: str,
) -> Callable[[float | None], float | None]:
    """A typer callback refusing NaN, infinities and values outside the range, so that a bad
    option fails at parse time with its name (exit code 2) instead of deep in the command."""
    rules = []
    if above is not None:
        rules.append(f"greater than {above:g}")
    if at_least is not None:
        rules.append(f"of {at_least:g} or more")
    if below is not None:
        rules.append(f"less than {below:g}")
    rule = f"a finite number {' and '.join(rules)}".rstrip() + f" (e.g. {example})"

    def check(value: float | None) -> float | None:
        if value is None:
            return None
        if (
            not math.isfinite(value)
            or (above is not None and value <= above)
            or (at_least is not None and value < at_least)
            or (below is not None and value >= below)
        ):
            raise typer.BadParameter(f"must be {rule}; got {value:g}.")
        return value

    return check


# Settings -----------------------------------------------------------------------------------
def load_settings(**overrides: Any) -> Settings:
    """The hub's settings from ``HUB_*``; a bad variable becomes a ``UserError`` naming it."""
    from pydantic import ValidationError

    from hub.settings import Settings

    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise UserError(describe_validation_error(error)) from None
    except ValueError as error:  # pydantic_settings.SettingsError: a value it cannot decode
        raise UserError(describe(error)) from None


def _variable(field: object) -> str:
    return f"HUB_{str(field).upper()}"


def describe_validation_error(error: ValidationError) -> str:
    """Which field (for ``Settings``: which ``HUB_*`` variable) is wrong and why; never the
    value given, which may be a secret."""
    problems = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        loc = item["loc"]
        if error.title == "Settings":
            where = _variable(loc[0]) if loc else "a HUB_* setting"
        else:
            where = ".".join(str(part) for part in loc) or error.title
        problems.append(f"{where}: {item['msg']}")
    if error.title == "Settings":
        noun = "setting" if len(problems) == 1 else "settings"
        pronoun = "it" if len(problems) == 1 else "them"
        return (
            f"invalid hub {noun} {'; '.join(problems)}. "
            f"Correct or unset {pronoun} (the README lists every HUB_* setting), then run the "
            "command again."
        )
    return f"invalid {error.title}: {'; '.join(problems)}"


_SETTINGS_FIELD = re.compile(r'error parsing value for field "(\w+)"')


def _settings_error(error: Exception) -> str | None:
    settings_module = sys.modules.get("pydantic_settings")
    settings_error = getattr(settings_module, "SettingsError", None)
    if settings_error is None or not isinstance(error, settings_error):
        return None
    found = _SETTINGS_FIELD.search(str(error))
    variable = _variable(found.group(1)) if found else "a HUB_* variable"
    return (
        f"invalid hub setting {variable}: its value could not be parsed (a mapping or list is "
        'given as JSON, e.g. \'{"Analyst": "analyst"}\'). Correct or unset it, then run the '
        "command again."
    )


def _database_error(error: Exception) -> str | None:
    """A bad ``HUB_DATABASE_URL`` or an unreachable database, in one line. Only the driver's
    own message is shown: SQLAlchemy's text can carry a statement and its parameters."""
    from sqlalchemy import exc

    if isinstance(error, exc.ArgumentError):
        return (
            "HUB_DATABASE_URL is not a database URL SQLAlchemy can use; give one such as "
            "postgresql+psycopg://user@host:5432/hub, or unset it for SQLite in HUB_DATA_DIR"
        )
    if isinstance(error, exc.DBAPIError):
        reason = _first_line(str(error.orig)) or type(error.orig).__name__
        if error.statement is None:  # raised while connecting
            return f"cannot reach the database (HUB_DATABASE_URL): {reason}"
        return f"the database refused the operation: {reason}"
    return None


# The safety net -----------------------------------------------------------------------------
def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= _MAX_MESSAGE else line[: _MAX_MESSAGE - 1] + "…"


def describe(error: Exception) -> str:
    """One line for an error a command did not anticipate. No file contents: an OSError is
    its path and reason; other messages are cut to their first line."""
    from pydantic import ValidationError

    if isinstance(error, UserError):
        return str(error)
    if isinstance(error, OSError):
        reason = error.strerror or _first_line(str(error)) or type(error).__name__
        if error.filename is not None and error.filename2 is not None:
            return f"{error.filename} -> {error.filename2}: {reason}"
        if error.filename is not None:
            return f"{error.filename}: {reason}"
        return reason
    if isinstance(error, ValidationError):
        return describe_validation_error(error)
    settings_problem = _settings_error(error)
    if settings_problem is not None:
        return settings_problem
    database_problem = _database_error(error)
    if database_problem is not None:
        return database_problem
    if isinstance(error, RecursionError):
        return (
            "the input is nested too deeply to read; check that you gave the right file "
            f"({DEBUG_VARIABLE}=1 shows where it happened)"
        )
    message = _first_line(str(error)) or type(error).__name__
    return f"{message} ({DEBUG_VARIABLE}=1 shows where it happened)"


_HANDLED = (UserError, OSError, ValueError, RecursionError)


def _is_handled(error: Exception) -> bool:
    """An error the safety net reports as one line. SQLAlchemy's are among them, but it is not
    imported here: it is a third of the CLI's start-up, and a command that never imported it
    cannot raise its errors."""
    if isinstance(error, _HANDLED):
        return True
    sqlalchemy_errors = sys.modules.get("sqlalchemy.exc")
    return sqlalchemy_errors is not None and isinstance(
        error, sqlalchemy_errors.SQLAlchemyError
    )


class HubGroup(TyperGroup):
    """The root ``hub`` command: reports a command's expected errors as one line (exit 1)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as error:
            if not _is_handled(error):
                raise
            if isinstance(error, OSError) and error.errno == errno.EPIPE:
                raise  # `hub audit export | head`: typer exits quietly
            if debug_enabled() and not isinstance(error, UserError):
                raise
            print_error(describe(error))
            raise typer.Exit(1) from None
