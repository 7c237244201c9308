"""Pydantic JSON Schema -> Kubernetes structural schema (OpenAPI v3 as CRDs accept it).

Kopf has no CRD generator (nolar/kopf#524), so this is the bridge. A CRD
schema must be *structural*: every node typed, no ``$ref``, no ``anyOf`` except
the int-or-string idiom, no ``additionalProperties`` beside ``properties``, no
``uniqueItems: true``, and OpenAPI 3.0's boolean ``exclusiveMinimum``. The
rewrite fails loudly on anything it cannot express, and on a field without a
description, so ``kubectl explain`` documents every field.

Optional fields (``X | None``) become simply not required, not ``nullable``:
the API server then prunes an explicit ``null``, and CEL's ``has()`` stays a
reliable test of presence in the validation rules.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SchemaError", "to_structural"]

_DROPPED = frozenset({"title", "uniqueItems"})

# Keys of apiextensions.k8s.io/v1 JSONSchemaProps that the models may produce.
_ALLOWED = frozenset(
    {
        "description",
        "type",
        "format",
        "default",
        "enum",
        "maximum",
        "minimum",
        "exclusiveMaximum",
        "exclusiveMinimum",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "maxProperties",
        "minProperties",
        "multipleOf",
        "required",
        "items",
        "properties",
        "additionalProperties",
        "anyOf",
        "x-kubernetes-validations",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-int-or-string",
    }
)

_RULES = "x-kubernetes-validations"


class SchemaError(ValueError):
    """The model uses something a structural schema cannot express."""


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``, concatenating their CEL rules rather than replacing."""
    merged = {**base, **override}
    rules = [*base.get(_RULES, []), *override.get(_RULES, [])]
    if rules:
        merged[_RULES] = rules
    return merged


def _unwrap_optional(node: dict[str, Any], path: str) -> dict[str, Any]:
    """``anyOf: [X, null]`` -> X with the outer keys (description, default …) on top."""
    any_of = node.pop("anyOf")
    branches = [b for b in any_of if b != {"type": "null"}]
    if len(branches) != 1 or len(branches) == len(any_of):
        raise SchemaError(
            f"{path}: a union other than `X | None` cannot be a structural schema: {any_of}"
        )
    return _merge(branches[0], node)


def _without_nulls(value: Any) -> Any:
    """A default with its ``None`` members removed (absent, as the API server stores it)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _numeric_bounds(node: dict[str, Any]) -> None:
    """JSON Schema 2020-12's numeric exclusive bounds -> OpenAPI 3.0's booleans."""
    for exclusive, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = node.get(exclusive)
        if value is not None and not isinstance(value, bool):
            node[inclusive] = value
            node[exclusive] = True


def _bound(node: dict[str, Any], key: str) -> tuple[Any, bool] | None:
    if key not in node:
        return None
    exclusive = "exclusiveMinimum" if key == "minimum" else "exclusiveMaximum"
    return node[key], bool(node.get(exclusive))


def _explain_constraints(node: dict[str, Any]) -> None:
    """Append the default and numeric range to the description.

    ``kubectl explain`` shows descriptions and enums but neither defaults nor
    bounds, so the description carries them.
    """
    notes = []
    low, high = _bound(node, "minimum"), _bound(node, "maximum")
    if low and high:
        notes.append(
            f"Range: {'(' if low[1] else '['}{low[0]}, {high[0]}{')' if high[1] else ']'}."
        )
    elif low:
        notes.append(f"{'Greater than' if low[1] else 'At least'} {low[0]}.")
    elif high:
        notes.append(f"{'Less than' if high[1] else 'At most'} {high[0]}.")
    default = node.get("default")
    if default is not None and not isinstance(default, dict | list):
        shown = str(default).lower() if isinstance(default, bool) else default
        notes.append(f"Default: `{shown}`.")
    if notes and "description" in node:
        node["description"] = " ".join([node["description"], *notes])


def _check(node: dict[str, Any], path: str) -> None:
    unknown = set(node) - _ALLOWED
    if unknown:
        raise SchemaError(f"{path}: keywords a CRD schema does not support: {sorted(unknown)}")
    if "type" not in node and not (
        node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
    ):
        raise SchemaError(f"{path}: every node of a structural schema needs a type")
    for name, prop in node.get("properties", {}).items():
        if not prop.get("description"):
            raise SchemaError(f"{path}.{name}: every field needs a description")


def to_structural(schema: dict[str, Any]) -> dict[str, Any]:
    """The structural schema equivalent to a pydantic ``model_json_schema(by_alias=True)``."""
    defs: dict[str, Any] = schema.get("$defs", {})

    def walk(node: dict[str, Any], path: str) -> dict[str, Any]:
        if "$ref" in node:
            node = dict(node)
            node = _merge(defs[node.pop("$ref").rsplit("/", 1)[-1]], node)
        node = {k: v for k, v in node.items() if k not in _DROPPED and k != "$defs"}
        if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
            node = _unwrap_optional(node, path)
            return walk(node, path)
        if "description" in node:
            # Docstrings wrap lines; kubectl explain wraps for itself.
            node["description"] = " ".join(node["description"].split())
        if "default" in node:
            if node["default"] is None:
                del node["default"]
            else:
                node["default"] = _without_nulls(node["default"])
        if "const" in node:
            node["enum"] = [node.pop("const")]
        _numeric_bounds(node)
        if "properties" in node:
            node.pop("additionalProperties", None)
            node["properties"] = {
                name: walk(prop, f"{path}.{name}") for name, prop in node["properties"].items()
            }
        elif node.get("type") == "object" and node.get("additionalProperties") in (None, True, {}):
            node.pop("additionalProperties", None)
            node["x-kubernetes-preserve-unknown-fields"] = True
        elif isinstance(node.get("additionalProperties"), dict):
            node["additionalProperties"] = walk(node["additionalProperties"], f"{path}.*")
        if isinstance(node.get("items"), dict):
            node["items"] = walk(node["items"], f"{path}[*]")
        _explain_constraints(node)
        _check(node, path)
        return node

    return walk(schema, "")
