"""Building dataclass instances without the dataclass ``__init__``, in one place (hot paths only).

A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` by name, and
``dataclasses.replace`` re-inspects the class on every call: about 1 µs for a record of nine
fields. A few values are made on every order (``SubmitOrder.evolve`` at every stage, the paper
venue's order record and top of book, the risk decision), so they are built here instead: the
object is created with ``object.__new__`` and each field set through its slot descriptor (a
``slots=True`` class) or written to the instance ``__dict__`` (any other), by a function
generated once per class. The result is the object the constructor builds: same fields, same
``==``, ``hash``, ``repr`` and pickling (``tests/contracts/test_library_compat.py`` proves it
against the public constructors with hypothesis).

Only for classes where the constructor does nothing else: a dataclass with no ``__post_init__``,
no ``InitVar`` and every field ``init=True`` (checked when the builder is made; ``TypeError``
otherwise). Tested with CPython 3.11 (:data:`TESTED_PYTHON`): the builder also checks that each
slot is a plain member descriptor, the layout it relies on, and raises ``TypeError`` when not.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: CPython ``(major, minor)`` versions the equivalence tests ran on
TESTED_PYTHON: tuple[tuple[int, int], ...] = ((3, 11),)

#: "argument not given" marker of the generated ``evolve`` methods
KEEP: Any = type("Keep", (), {"__repr__": lambda self: "KEEP", "__slots__": ()})()

_MEMBER_DESCRIPTOR = type(type("_Probe", (), {"__slots__": ("x",)}).__dict__["x"])

__all__ = ["KEEP", "TESTED_PYTHON", "builder", "evolver", "replacer"]


def _fields(cls: type) -> tuple[dataclasses.Field, ...]:
    if not dataclasses.is_dataclass(cls) or not isinstance(cls, type):
        raise TypeError(f"{cls!r} is not a dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has __post_init__: build it with its constructor")
    fs = dataclasses.fields(cls)
    if any(not f.init for f in fs) or any(isinstance(f.type, dataclasses.InitVar) for f in fs):
        raise TypeError(f"{cls.__name__} has a field its constructor does not simply set")
    return fs


def _setters(cls: type, fs: tuple[dataclasses.Field, ...]) -> dict[str, Any] | None:
    """Slot descriptor ``__set__`` per field for a ``slots=True`` class; None for a ``__dict__`` class."""
    if "__slots__" not in cls.__dict__:
        return None
    out = {}
    for f in fs:
        descriptor: Any = cls.__dict__.get(f.name)
        if type(descriptor) is not _MEMBER_DESCRIPTOR:
            raise TypeError(f"{cls.__name__}.{f.name} is not a plain slot (Python {sys.version_info[:2]} layout)")
        out[f"_set_{f.name}"] = descriptor.__set__
    return out


def _generate(cls: type, name: str, params: str, values: list[str], fs: tuple[dataclasses.Field, ...],
              namespace: dict[str, Any]) -> Callable:
    setters = _setters(cls, fs)
    lines = [f"def {name}({params}):", "    obj = _new(_cls)"]
    if setters is None:
        items = ", ".join(f"{f.name!r}: {v}" for f, v in zip(fs, values, strict=False))
        lines.append(f"    obj.__dict__.update({{{items}}})")
    else:
        namespace.update(setters)
        lines += [f"    _set_{f.name}(obj, {v})" for f, v in zip(fs, values, strict=False)]
    lines.append("    return obj")
    namespace.update({"_new": object.__new__, "_cls": cls})
    exec("\n".join(lines), namespace)
    fn = namespace[name]
    fn.__qualname__ = f"{cls.__name__}.{name}"
    return fn


def builder(cls: type[T]) -> Callable[..., T]:
    """A function taking ``cls``'s fields (positionally or by name, with the same defaults) that
    returns what ``cls(...)`` returns, without the dataclass ``__init__``.

    Raises ``TypeError`` for a class whose constructor does more than set its fields.
    A field with a ``default_factory`` has no default here (pass it).
    """
    fs = _fields(cls)
    namespace: dict[str, Any] = {}
    params = []
    for f in fs:
        if f.default is not dataclasses.MISSING:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        else:
            params.append(f.name)
    return _generate(cls, f"build_{cls.__name__}", ", ".join(params), [f.name for f in fs], fs, namespace)


def evolver(cls: type[T]) -> Callable[..., T]:
    """An ``evolve(self, **changes)`` method for ``cls``: ``dataclasses.replace(self, **changes)``
    without its per-call introspection (every field may be changed by name; unknown names raise
    ``TypeError`` as a wrong keyword does). Raises ``TypeError`` as :func:`builder` does."""
    fs = _fields(cls)
    params = "self, *, " + ", ".join(f"{f.name}=_KEEP" for f in fs)
    values = [f"self.{f.name} if {f.name} is _KEEP else {f.name}" for f in fs]
    return _generate(cls, "evolve", params, values, fs, {"_KEEP": KEEP})


def replacer(cls: type[T], *names: str) -> Callable[..., T]:
    """A method ``(self, *values)`` for ``cls``: ``dataclasses.replace(self, **dict(zip(names, values)))``
    for these ``names`` only, every other field taken from ``self`` with no "was it given?" test per
    field (what :func:`evolver` does for each): for the one or two fields a hot stage changes on
    every order. Raises ``TypeError`` as :func:`builder` does, and for a name that is not a field
    of ``cls`` or is given twice.
    """
    fs = _fields(cls)
    known = {f.name for f in fs}
    if not names or len(set(names)) != len(names) or not set(names) <= known:
        raise TypeError(f"replacer({cls.__name__}, {', '.join(map(repr, names))}): each name must be a field of the class, once")
    params = ", ".join(("self", *names))
    values = [f.name if f.name in names else f"self.{f.name}" for f in fs]
    return _generate(cls, "with_" + "_".join(names), params, values, fs, {})
