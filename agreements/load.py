"""Read agreements from YAML or JSON, turning every failure into one precise AgreementError."""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from agreements.model import Agreement, LocatedError

MAX_AGREEMENT_BYTES = 1_000_000
EXAMPLES_DIR = Path(__file__).parent / "examples"

Format = Literal["yaml", "json"]


class AgreementError(Exception):
    """An agreement is unreadable, invalid or inconsistent.

    ``str()`` reads ``<source>: <field>: <reason>`` so it can be shown to an IG lead as is.
    """

    def __init__(self, source: str, field: str, reason: str) -> None:
        self.source = source
        self.field = field
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.field:
            return f"{self.source}: {self.field}: {self.reason}"
        return f"{self.source}: {self.reason}"


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys and aliases.

    YAML would silently keep the last of two duplicate keys. Aliases are refused because nested
    aliases ("billion laughs") make a small file expand into an enormous document to validate,
    and an agreement never needs them.
    """

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in an agreement", event.start_mark
            )
        return super().compose_node(parent, index)


def _construct_unique_mapping(
    loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Hashable, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Hashable, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, Hashable):
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            )
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_unique_mapping,
)


def field_path(loc: Sequence[int | str]) -> str:
    """``("datasets", 0, "fields", 3, "generalise")`` → ``datasets[0].fields[3].generalise``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _reason(error: ErrorDetails) -> tuple[tuple[int | str, ...], str]:
    loc: tuple[int | str, ...] = tuple(error["loc"])
    ctx = error.get("ctx") or {}
    cause = ctx.get("error")
    if isinstance(cause, LocatedError):
        return loc + cause.path, cause.reason
    kind = error["type"]
    if kind == "missing":
        return loc, "required but missing"
    if kind == "extra_forbidden":
        return loc, "unknown key (misspelt?); remove it or check the spelling in docs/agreements.md"
    if kind == "value_error":
        return loc, str(cause) if cause is not None else error["msg"]
    if kind == "string_pattern_mismatch" and loc and loc[-1] == "ico_registration":
        return loc, "not an ICO registration number; expected e.g. Z1234567 or ZA123456"
    value = error.get("input")
    if isinstance(value, str | int | float) and len(repr(value)) <= 80:
        return loc, f"{error['msg']}; got {value!r}"
    return loc, error["msg"]


def _from_validation_error(source: str, exc: ValidationError) -> AgreementError:
    errors = exc.errors(include_url=False)
    loc, reason = _reason(errors[0])
    if len(errors) > 1:
        reason += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return AgreementError(source, field_path(loc), reason)


_TOO_DEEP = "nested far deeper than any agreement (lists or mappings inside each other)"


def _load_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or str(exc)
        if "could not determine a constructor" in problem:
            problem = "tags such as !!python/object are not allowed; " + problem
        raise AgreementError(source, "", f"not valid YAML at {where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise AgreementError(source, "", f"not valid YAML: {exc}") from None
    except RecursionError:
        raise AgreementError(source, "", _TOO_DEEP) from None


def parse_agreement(data: bytes | str, source: str, format: Format = "yaml") -> Agreement:
    """Parse and validate one agreement document; raise AgreementError on any problem."""
    if len(data) > MAX_AGREEMENT_BYTES:
        raise AgreementError(
            source, "", f"larger than {MAX_AGREEMENT_BYTES:,} bytes; an agreement is never this big"
        )
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AgreementError(source, "", f"not UTF-8 text (byte {exc.start})") from None
    else:
        text = data
    if format == "yaml":
        document = _load_yaml(text, source)
    elif format == "json":
        try:
            document = json.loads(text, object_pairs_hook=_unique_json_object)
        except json.JSONDecodeError as exc:
            raise AgreementError(
                source, "", f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
        except _DuplicateKey as exc:
            raise AgreementError(source, "", f"not valid JSON: duplicate key {exc.key!r}") from None
        except RecursionError:
            raise AgreementError(source, "", _TOO_DEEP) from None
    else:
        raise AgreementError(source, "", f"unknown format {format!r}; use yaml or json")
    if not isinstance(document, dict):
        kind = "empty" if document is None else f"a {type(document).__name__}"
        raise AgreementError(source, "", f"the top level must be a mapping of keys, not {kind}")
    try:
        return Agreement.model_validate(document)
    except ValidationError as exc:
        raise _from_validation_error(source, exc) from None


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def load_agreement(path: Path) -> Agreement:
    """Load ``path`` (.yaml, .yml or .json); errors name the file, the field and the reason."""
    source = path.name
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        format: Format = "yaml"
    elif suffix == ".json":
        format = "json"
    else:
        raise AgreementError(source, "", "unknown file type; use .yaml, .yml or .json")
    try:
        size = path.stat().st_size
        if size > MAX_AGREEMENT_BYTES:
            raise AgreementError(
                source, "", f"larger than {MAX_AGREEMENT_BYTES:,} bytes; an agreement is never "
                "this big"
            )
        with path.open("rb") as handle:
            data = handle.read(MAX_AGREEMENT_BYTES + 1)
    except OSError as exc:
        raise AgreementError(source, "", f"cannot read the file: {exc.strerror}") from None
    return parse_agreement(data, source, format)


def example_paths() -> list[Path]:
    """The example agreements shipped with the package, sorted by file name."""
    return sorted(EXAMPLES_DIR.glob("*.yaml"))
