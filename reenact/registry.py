"""The networks a weight contract may build, by short name (timm's `register_model` / `create_model` pattern).

A contract's "arch" is a key of this registry, never an import path: loading weights can only construct one of
reenact's own classes, with JSON-typed arguments its constructor declares. Nothing a contract says is imported or
called. The registry fills itself by importing the fixed modules in `KNOWN_MODULES` (lazily: the shading module
pulls in scipy, about 0.4 s, which a face-only command should not pay).

    @register_model("facemesh")
    class FaceMesh(nn.Module): ...

    net = create_model("facemesh", stem=16)
"""

from __future__ import annotations

import collections.abc
import importlib
import inspect
import types
import typing
from typing import Any, Callable, TypeVar

from reenact.errors import ContractError

# Modules that define registered networks, cheapest import first. The only modules the registry ever imports;
# a class outside them cannot be built from a contract.
KNOWN_MODULES: tuple[str, ...] = (
    "reenact.rig",
    "reenact.estimate",
    "reenact.identity_net",
    "reenact.face.nets",
    "reenact.speech",
    "reenact.render.refine",
    "reenact.render.shade",
    "reenact.render.interior",
)

_MODELS: dict[str, type] = {}
_HINTS: dict[str, dict[str, Any]] = {}  # name -> constructor argument -> resolved annotation
_imported: set[str] = set()

T = TypeVar("T", bound=type)

_SCALARS = (bool, int, float, str, type(None))
_SEQUENCES = (list, tuple, collections.abc.Sequence)


def _json_hint(hint: Any) -> bool:
    """True when `hint` describes JSON scalars or (nested) lists of them: what a contract's kwargs can hold."""
    if hint in _SCALARS:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return all(_json_hint(a) for a in args)
    if origin in _SEQUENCES:
        return bool(args) and all(a is Ellipsis or _json_hint(a) for a in args)
    return False


def _fits(value: Any, hint: Any) -> bool:
    """Does `value` (parsed JSON, or what a Python caller passed) match the annotation `hint`?"""
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:  # bool is an int subclass; `true` for a channel count is a mistake, not 1
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint is type(None):
        return value is None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if origin in _SEQUENCES and isinstance(value, (list, tuple)):  # JSON has arrays only, so a tuple hint takes a list
        if origin is tuple and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(_fits(v, a) for v, a in zip(value, args))
        return all(_fits(v, args[0]) for v in value)
    return False


def _describe(hint: Any) -> str:
    return getattr(hint, "__name__", None) if isinstance(hint, type) else str(hint).replace("typing.", "")


def register_model(name: str) -> Callable[[T], T]:
    """Class decorator: make `cls` buildable from a contract whose "arch" is `name`.

    The constructor may take only named arguments annotated with JSON types (bool, int, float, str, None, lists or
    tuples of them): a contract is data, and `**kwargs` or an object-typed argument would let it pass more than data.
    A violation is a bug in reenact, so it raises TypeError at import time rather than a user-facing error.
    """

    def decorate(cls: T) -> T:
        hints = typing.get_type_hints(cls.__init__)
        for param in inspect.signature(cls).parameters.values():
            if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
                raise TypeError(f"{cls.__qualname__}: registered models take named arguments only, not {param}.")
            if not _json_hint(hints.get(param.name)):
                raise TypeError(f"{cls.__qualname__}.{param.name}: annotate it with a JSON type to register the model.")
        known = _MODELS.get(name)
        if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
            raise TypeError(f"Model name {name!r} is taken by {known.__module__}.{known.__qualname__}.")
        _MODELS[name] = cls
        _HINTS[name] = {p: hints[p] for p in inspect.signature(cls).parameters}
        return cls

    return decorate


def _lookup(name: str) -> type | None:
    """The class registered as `name`, importing the known modules one by one until it appears."""
    for module in KNOWN_MODULES:
        if name in _MODELS:
            break
        if module not in _imported:
            importlib.import_module(module)  # a constant of this file, never a string from a contract
            _imported.add(module)
    return _MODELS.get(name)


def model_names() -> list[str]:
    """Every registered name, sorted (imports all known modules)."""
    _lookup("")
    return sorted(_MODELS)


def registered_path(arch: str) -> str | None:
    """The registry name of the class an old-style "module:Class" arch named, if it is a registered one (no import)."""
    module, _, qualname = arch.partition(":")
    _lookup("")
    return next((n for n, c in _MODELS.items() if (c.__module__, c.__qualname__) == (module, qualname)), None)


def check_arguments(name: str, kwargs: Any) -> type:
    """The class registered as `name`, after checking `kwargs` against its constructor; ContractError otherwise."""
    cls = _lookup(name) if isinstance(name, str) else None
    if cls is None:
        raise ContractError(f"Unknown network {name!r}; the registered ones are {', '.join(model_names())}.")
    if not isinstance(kwargs, dict):
        raise ContractError(f"The arguments of {name!r} must be a JSON object, not {type(kwargs).__name__}.")
    hints = _HINTS[name]
    unknown = sorted(str(k) for k in kwargs if k not in hints)
    if unknown:
        raise ContractError(f"{name!r} takes no argument {', '.join(unknown)}; it takes {', '.join(hints) or 'none'}.")
    params = inspect.signature(cls).parameters
    missing = [p for p in hints if p not in kwargs and params[p].default is inspect.Parameter.empty]
    if missing:
        raise ContractError(f"{name!r} needs the argument(s) {', '.join(missing)}.")
    for key, value in kwargs.items():
        if not _fits(value, hints[key]):
            raise ContractError(f"{name!r} argument {key}={value!r:.60} is not of type {_describe(hints[key])}.")
    return cls


def create_model(name: str, **kwargs: Any) -> Any:
    """Build the network registered as `name` with `kwargs` (checked first: names and JSON types)."""
    return check_arguments(name, kwargs)(**kwargs)
