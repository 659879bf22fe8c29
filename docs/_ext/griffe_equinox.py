"""A Griffe extension: Equinox modules and enumerations as users see them.

- `eqx.Module` subclasses are dataclasses made by a metaclass, not by `@dataclass`,
  so static analysis finds no `__init__` for them and mkdocstrings would render their
  classes without arguments. This extension rebuilds `__init__` from the annotated
  fields, as `dataclasses` does: fields of base modules first, `ClassVar`s and
  properties skipped, defaults taken from `= value` or `eqx.field(default=...)`.
- `eqx.Enumeration` members are strings: the message each result carries. They are
  made the members' docstrings, so the reference shows them as prose.

Loaded by `mkdocs.yml` (mkdocstrings' python handler, `extensions:`); not part of the
package.
"""

from __future__ import annotations

import ast
from typing import Any

import griffe

_MODULE_PATHS = {"equinox.Module", "equinox._module.Module", "equinox._module._module.Module"}
_ENUMERATION_PATHS = {"equinox.Enumeration", "equinox._enum.Enumeration"}
_FIELD_PATHS = {"equinox.field", "equinox._module.field", "dataclasses.field"}


def _base_classes(cls: griffe.Class) -> list[griffe.Class]:
    """The bases of `cls` that Griffe can resolve (those inside loaded packages)."""
    out = []
    for base in cls.bases:
        path = getattr(base, "canonical_path", str(base))
        try:
            obj = cls.modules_collection[path]
        except (KeyError, Exception):
            continue
        while isinstance(obj, griffe.Alias):
            try:
                obj = obj.target
            except Exception:
                obj = None
                break
        if isinstance(obj, griffe.Class):
            out.append(obj)
    return out


def _is_equinox_module(cls: griffe.Class, seen: frozenset[str] = frozenset()) -> bool:
    if cls.path in seen:
        return False
    for base in cls.bases:
        if getattr(base, "canonical_path", str(base)) in _MODULE_PATHS:
            return True
    return any(_is_equinox_module(b, seen | {cls.path}) for b in _base_classes(cls))


def _field_parameter(attr: griffe.Attribute) -> griffe.Parameter | None:
    labels = attr.labels
    if attr.annotation is None or "property" in labels:
        return None
    # A ClassVar is labelled as a class attribute only; fields are instance attributes.
    if "instance-attribute" not in labels:
        return None
    default: Any = attr.value
    value = attr.value
    if isinstance(value, griffe.ExprCall) and value.canonical_path in _FIELD_PATHS:
        kwargs = {
            a.name: a.value for a in value.arguments if isinstance(a, griffe.ExprKeyword)
        }
        if str(kwargs.get("init", "True")) == "False":
            return None
        if "default_factory" in kwargs:
            default = griffe.ExprCall(function=kwargs["default_factory"], arguments=[])
        else:
            default = kwargs.get("default")
    return griffe.Parameter(
        attr.name,
        annotation=attr.annotation,
        kind=griffe.ParameterKind.positional_or_keyword,
        default=default,
    )


def _fields(cls: griffe.Class, seen: frozenset[str] = frozenset()) -> dict[str, griffe.Parameter]:
    if cls.path in seen:
        return {}
    params: dict[str, griffe.Parameter] = {}
    for base in reversed(_base_classes(cls)):
        params.update(_fields(base, seen | {cls.path}))
    for member in cls.members.values():
        if isinstance(member, griffe.Attribute):
            param = _field_parameter(member)
            if param is not None:
                params[member.name] = param
    return params


def _document_enumeration(cls: griffe.Class) -> None:
    """Give each member of an `eqx.Enumeration` its message as docstring."""
    for member in cls.members.values():
        if not isinstance(member, griffe.Attribute) or member.docstring is not None:
            continue
        try:
            message = ast.literal_eval(str(member.value))
        except (ValueError, SyntaxError):
            continue
        if not isinstance(message, str):
            continue
        text = message or "No message (the empty string)."
        member.docstring = griffe.Docstring(text, parent=member)


def _visit(obj: griffe.Object, done: set[str]) -> None:
    if obj.path in done:
        return
    done.add(obj.path)
    if isinstance(obj, griffe.Class) and any(
        getattr(b, "canonical_path", str(b)) in _ENUMERATION_PATHS for b in obj.bases
    ):
        _document_enumeration(obj)
    elif isinstance(obj, griffe.Class):
        if "__init__" not in obj.members and _is_equinox_module(obj):
            init = griffe.Function(
                "__init__",
                lineno=0,
                endlineno=0,
                parent=obj,
                parameters=griffe.Parameters(
                    griffe.Parameter("self", kind=griffe.ParameterKind.positional_or_keyword),
                    *_fields(obj).values(),
                ),
                returns="None",
            )
            obj.set_member("__init__", init)
            obj.labels.add("equinox-module")
    for member in list(obj.members.values()):
        if not member.is_alias and (member.is_module or member.is_class):
            _visit(member, done)  # type: ignore[arg-type]


class EquinoxModules(griffe.Extension):
    """Give every `eqx.Module` subclass an `__init__` built from its fields, and every
    `eqx.Enumeration` member its message as docstring."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        _visit(pkg, set())
