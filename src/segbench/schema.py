"""The study schema (``workflow/schemas/config.schema.yaml``): the one home of the study's
defaults and allowed values.

A validator that fills every ``default`` it passes (jsonschema's documented
"extending a validator to set defaults" recipe, the semantics of
``snakemake.utils.validate(..., set_default=True)``) is used both on a whole study
(:func:`segbench.config.validate_schema`) and on one section (:func:`resolve_section`, e.g. the
partial ``training`` dict of a hand-built :class:`segbench.runspec.RunSpec`), so a key missing
from a config resolves to the same value everywhere and no code repeats a default.

Imports nothing of segbench (config, runspec, train, evaluate and reporting may all import it).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The study configuration is invalid; the message names the key and the allowed values."""


@functools.cache
def _schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def load_schema() -> dict[str, Any]:
    """A fresh copy of the parsed schema (callers may modify it)."""
    return copy.deepcopy(_schema())


def _with_defaults(validator_cls: type) -> type:
    validate_props = validator_cls.VALIDATORS["properties"]

    def set_defaults(
        validator: Any, properties: dict, instance: Any, schema: dict
    ) -> Iterator[Any]:
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from validate_props(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_cls, {"properties": set_defaults})


DefaultFillingValidator = _with_defaults(jsonschema.Draft202012Validator)
"""Draft 2020-12 validator that fills ``default`` values in place while validating."""


def first_error(
    instance: Any, schema: Mapping[str, Any], where: str, prefix: str = ""
) -> ConfigError | None:
    """Validate ``instance`` (defaults filled in place); the first error as a
    :class:`ConfigError` naming ``where``, the dotted key (``prefix`` + path) and the message
    (which lists the allowed values of an enum), or None."""
    errors = sorted(
        DefaultFillingValidator(schema).iter_errors(instance), key=lambda e: list(e.path)
    )
    if not errors:
        return None
    err = errors[0]
    path = ".".join(str(p) for p in err.absolute_path)
    key = ".".join(p for p in (prefix, path) if p) or "<top level>"
    return ConfigError(f"{where}: invalid value at key '{key}': {err.message}")


def section_schema(section: str) -> dict[str, Any]:
    """The schema of the top-level section ``section`` (``training``, ``evaluation``, ...)."""
    return _schema()["properties"][section]


def resolve_section(
    section: str, partial: Mapping[str, Any] | None, where: str | None = None
) -> dict[str, Any]:
    """``partial`` (not modified) with the schema defaults of ``section`` filled in, validated.

    Raises:
        ConfigError: naming the key, the value and what is allowed.
    """
    out = copy.deepcopy(dict(partial or {}))
    err = first_error(out, section_schema(section), where or section, prefix=section)
    if err is not None:
        raise err
    return out


def section_defaults(section: str) -> dict[str, Any]:
    """The top-level defaults of ``section`` (what an empty section resolves to)."""
    return resolve_section(section, {})
