"""The base model of every API type, and validation rules the API server enforces.

Every spec and status is a `CamelModel`: snake_case in Python, camelCase on the
wire, unknown fields refused. Cross-field rules are written once, as CEL
(`Rule`), and attached to a class (``cel_rules``) or a field (`field_rules`);
`mlops_operator.crdgen` copies them into the CRD's ``x-kubernetes-validations``
so the API server rejects a bad object before any controller sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

__all__ = ["CamelModel", "Rule", "field_rules", "frozen_except"]

RuleReason = Literal[
    "FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired", "FieldValueDuplicate"
]


@dataclass(frozen=True)
class Rule:
    """One CEL rule (an ``x-kubernetes-validations`` entry).

    ``field_path`` (relative to the node the rule sits on, e.g. ``.cooldown``)
    makes the API server report the error on that field rather than on the
    node, so the message names the field the user has to fix.
    """

    rule: str
    message: str
    field_path: str | None = None
    reason: RuleReason | None = None

    def to_schema(self) -> dict[str, str]:
        """The rule as it appears in the CRD."""
        entry = {"rule": self.rule, "message": self.message}
        if self.field_path:
            entry["fieldPath"] = self.field_path
        if self.reason:
            entry["reason"] = self.reason
        return entry


def _class_rules(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    """Attach the ``cel_rules`` of ``cls`` and of its bases to its JSON schema."""
    seen: list[Rule] = []
    for klass in reversed(cls.__mro__):
        for rule in vars(klass).get("cel_rules", ()):
            if rule not in seen:
                seen.append(rule)
    if seen:
        schema["x-kubernetes-validations"] = [rule.to_schema() for rule in seen]


class CamelModel(BaseModel):
    """Base of every API type: camelCase aliases on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra=_class_rules,
    )

    cel_rules: ClassVar[tuple[Rule, ...]] = ()


def field_rules(*rules: Rule) -> dict[str, Any]:
    """``json_schema_extra`` for a field that carries CEL rules of its own."""
    return {"x-kubernetes-validations": [rule.to_schema() for rule in rules]}


def frozen_except(model: type[BaseModel], *mutable: str, message: str) -> Rule:
    """A transition rule that freezes every field of ``model`` except ``mutable`` (wire names).

    CEL cannot compare two objects while ignoring some keys, so the rule lists
    the frozen fields one by one; an optional field must stay absent or stay
    equal. Generating the list from the model keeps it right when fields are added.
    """
    terms = []
    for name, field in model.model_fields.items():
        wire = field.alias or name
        if wire in mutable:
            continue
        if field.is_required():
            terms.append(f"self.{wire} == oldSelf.{wire}")
        else:
            terms.append(
                f"(has(self.{wire}) ? has(oldSelf.{wire}) && self.{wire} == oldSelf.{wire}"
                f" : !has(oldSelf.{wire}))"
            )
    return Rule(" && ".join(terms), message)
