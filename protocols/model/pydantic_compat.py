"""pydantic's internals, in one place: building models from values that are already valid.

The hot paths make a pydantic value per order and per fill (reports, errors, venue orders, the
simulated venue's fills and states). Every field of those values comes from data pydantic has
validated already, so validating again only costs time, and ``BaseModel.model_construct`` is
slower than validating in pydantic 2.x (it scans every field in Python). :func:`construct_valid`
does only what ``model_construct`` ends with, by writing pydantic's own instance slots through
their descriptors. That, and the model-class checks that say when it is exact, are the only uses
of pydantic's private names in the project; nothing else touches them:

==================================  ==================================================================
pydantic's private name             what it is used for here
==================================  ==================================================================
``BaseModel.__dict__`` slot,        written by :func:`construct_valid` (fields, fields set, no extra,
``__pydantic_fields_set__``,        no private values), as ``model_construct`` does
``__pydantic_extra__``,
``__pydantic_private__``
``__pydantic_post_init__``,         :func:`constructible`: a model whose validation does more than
``__private_attributes__``,         set its fields cannot be built this way
``__pydantic_root_model__``
==================================  ==================================================================

(:func:`slot_accessors` reads and writes a plain Python ``__slots__`` entry a model declares, e.g.
``OrderIntent``'s cached fingerprint, past the frozen model's ``__setattr__``.)

Pinned: :data:`TESTED_PYDANTIC` lists the pydantic ``major.minor`` versions these functions were
proven equal to the validating constructors with (``tests/contracts/test_library_compat.py``,
hypothesis; plus the import-time self-checks of ``protocols/venues/paper/trusted.py``). Importing
this module with any other pydantic raises ``ImportError`` saying so; to move to a new pydantic,
run those tests against it, then add it here and to ``pyproject.toml``.
"""

from __future__ import annotations

from collections.abc import Callable, Set
from importlib import metadata
from typing import Any

from pydantic import BaseModel

#: pydantic ``(major, minor)`` versions this module is proven equal to validation with
TESTED_PYDANTIC: tuple[tuple[int, int], ...] = ((2, 14),)

__all__ = ["TESTED_PYDANTIC", "check_pydantic_version", "construct_valid", "constructible", "same_instance", "slot_accessors"]


def check_pydantic_version(version: str, tested: tuple[tuple[int, int], ...] = TESTED_PYDANTIC) -> None:
    """Raise ``ImportError`` unless pydantic ``version`` (e.g. ``"2.14.4"``) has a tested ``major.minor``."""
    parts = version.split(".")
    try:
        major_minor = (int(parts[0]), int(parts[1]))
    except (IndexError, ValueError):
        major_minor = None
    if major_minor not in tested:
        tested_text = ", ".join(f"{a}.{b}" for a, b in tested)
        raise ImportError(
            f"flowroute's models write pydantic internals proven only with pydantic {tested_text}, "
            f"but pydantic {version} is installed. Install a tested pydantic (see pyproject.toml), or run "
            f"tests/contracts/test_library_compat.py against pydantic {version} and add it to "
            f"TESTED_PYDANTIC in protocols/model/pydantic_compat.py."
        )


check_pydantic_version(metadata.version("pydantic"))

_new_object = object.__new__
# BaseModel's own instance slots, set through their descriptors (what ``model_construct`` ends
# with, without its per-field Python loop and default deep copies)
_set_dict, _set_fields_set, _set_extra, _set_private = (
    BaseModel.__dict__[name].__set__
    for name in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")
)


def constructible(model: type[BaseModel]) -> bool:
    """True when building ``model`` the way :func:`construct_valid` does gives what validation
    gives: no post-init hook, no private attributes, not a root model, extra fields forbidden."""
    return (
        model.__pydantic_post_init__ is None
        and not model.__private_attributes__
        and not model.__pydantic_root_model__
        and model.model_config.get("extra") == "forbid"
    )


def construct_valid(model: type[BaseModel], fields: dict[str, Any], given: Set[str]) -> Any:
    """An instance of the pydantic model ``model`` holding ``fields``, which are already valid.

    ``fields`` maps EVERY field to its value in declaration order (defaults included);
    ``given`` names the fields the equivalent validating call would pass (its
    ``model_fields_set``). Only for values that passed validation as fields of the same or a
    stricter type, or whose exact types the caller checked: nothing is validated here. The
    instance is what ``model.model_construct(_fields_set=given, **fields)`` builds (same
    ``__dict__``, fields set, no extra, no private values), at a fraction of its cost. Only for
    :func:`constructible` models (callers check this once at import against validated instances).
    """
    obj: Any = _new_object(model)
    _set_dict(obj, fields)
    _set_fields_set(obj, set(given))
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


def same_instance(fast: Any, slow: Any) -> bool:
    """True when ``fast`` (built by :func:`construct_valid`) is the object validation built as
    ``slow``: type, fields and their order and reprs, fields set, extra, private state,
    ``==``, ``hash`` and JSON."""
    return (
        type(fast) is type(slow)
        and list(fast.__dict__.items()) == list(slow.__dict__.items())
        and [repr(v) for v in fast.__dict__.values()] == [repr(v) for v in slow.__dict__.values()]
        and fast.__pydantic_fields_set__ == slow.__pydantic_fields_set__
        and fast.__pydantic_extra__ == slow.__pydantic_extra__
        and fast.__pydantic_private__ == slow.__pydantic_private__
        and fast == slow
        and hash(fast) == hash(slow)
        and fast.model_dump_json() == slow.model_dump_json()
    )


def slot_accessors(model: type[BaseModel], name: str) -> tuple[Callable[[Any], Any], Callable[[Any, Any], None]]:
    """``(get, set)`` of the plain ``__slots__`` entry ``name`` that ``model`` declares (``get``
    raises ``AttributeError`` while it is empty; ``set`` bypasses the frozen model's
    ``__setattr__``). Raises ``TypeError`` when ``name`` is not such a slot."""
    descriptor: Any = model.__dict__.get(name)
    if type(descriptor).__name__ != "member_descriptor":
        raise TypeError(f"{model.__name__}.{name} is not a __slots__ entry")
    return descriptor.__get__, descriptor.__set__
