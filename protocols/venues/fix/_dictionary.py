"""FIX data dictionaries: field validation of received messages (``[venues.fix] data_dictionary``).

A data dictionary is QuickFIX's XML description of one FIX version (``spec/FIX42.xml``,
``spec/FIX44.xml`` in the QuickFIX sources, or a broker's own edition of them): every field
with its number, type and allowed values, the header and trailer, and every message with its
fields, components and repeating groups, each required or not. With one configured, every
message received on the session is checked the way the QuickFIX engine checks it, and the
first problem is answered with a session Reject (35=3) carrying SessionRejectReason (373)
and RefTagID (371), in QuickFIX's order (FIX 4.4 Vol 2 "Session-level Reject"):

1. a header field after the body, or a body field after the trailer: 14 "Tag specified out of
   required order";
2. a required field missing (header, trailer, body, and inside each group instance present;
   the fields of a required component are required): 1 "Required tag missing";
3. field by field (header, trailer, then the body in tag order): a value of the wrong format
   for its type: 6 "Incorrect data format for value"; a value outside the field's enumeration:
   5 "Value is incorrect (out of range) for this tag"; a tag the dictionary does not define:
   0 "Invalid tag number" (user-defined tags, 5000 and up, only when
   ``validate_user_defined_fields``, QuickFIX's ValidateUserDefinedFields, default on); a tag
   not defined for this message type: 2 "Tag not defined for this message type"; a
   NumInGroup that does not count its group's instances: 16 "Incorrect NumInGroup count for
   repeating group".

A message type the dictionary does not define is not checked further (no reject: a venue
may add its own message types). Loading raises :class:`DictionaryError` naming the file and
what is wrong with it.

Example::

    >>> d = DataDictionary.load("../shared/fix-acceptance/spec/FIX44.xml")  # doctest: +SKIP
    >>> d.begin_string, d.field_number("ClOrdID")  # doctest: +SKIP
    ('FIX.4.4', 11)
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ._codec import Frame, is_header_tag

#: the first user-defined tag number (FIX: 5000-9999 and above are user-defined)
USER_MIN = 5000

_INT = re.compile(r"-?\d+\Z")
_FLOAT = re.compile(r"-?(\d+\.?\d*|\.\d+)\Z")
_NUMERIC_TYPES = frozenset({"FLOAT", "QTY", "PRICE", "PRICEOFFSET", "AMT", "PERCENTAGE"})
_INT_TYPES = frozenset({"INT", "LENGTH", "NUMINGROUP", "SEQNUM", "TAGNUM", "DAYOFMONTH"})
_TIMESTAMP_FORMATS = ("%Y%m%d-%H:%M:%S", "%Y%m%d-%H:%M:%S.%f")


class DictionaryError(ValueError):
    """The data dictionary file cannot be used (names the file and the problem)."""


@dataclass(frozen=True)
class _Group:
    """A repeating group: its NumInGroup tag, its first (delimiter) field, every tag inside it
    (nested groups' included), its own required fields and its nested groups."""

    counter: int
    delimiter: int
    tags: frozenset[int]
    required: tuple[int, ...]
    groups: dict[int, _Group]


@dataclass(frozen=True)
class _Shape:
    """The fields of one message (or of the header / trailer): top-level tags, required ones,
    every tag allowed anywhere inside (groups included) and the repeating groups."""

    tags: frozenset[int]
    required: tuple[int, ...]
    all_tags: frozenset[int]
    groups: dict[int, _Group]


@dataclass(frozen=True)
class DataDictionary:
    """One FIX version's dictionary (see the module docstring). Immutable; thread-safe."""

    begin_string: str
    types: dict[int, str]
    enums: dict[int, frozenset[str]]
    names: dict[str, int]
    header: _Shape
    trailer: _Shape
    messages: dict[str, _Shape]
    source: str = ""
    validate_user_defined_fields: bool = True
    check_fields_out_of_order: bool = True
    _header_tags: frozenset[int] = field(default=frozenset(), repr=False)

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: str | Path, *, validate_user_defined_fields: bool = True,
             check_fields_out_of_order: bool = True) -> DataDictionary:
        """Read a QuickFIX-format XML dictionary (``<fix major= minor=>`` with ``<header>``,
        ``<trailer>``, ``<messages>``, ``<components>``, ``<fields>``). Raises
        :class:`DictionaryError` for a missing or unreadable file, bad XML, an undefined field
        or component name, or a version other than FIX 4.x."""
        where = Path(path)
        try:
            root = ET.parse(where).getroot()
        except OSError as exc:
            raise DictionaryError(f"FIX data dictionary {where}: cannot read it ({exc.strerror or exc})") from None
        except ET.ParseError as exc:
            raise DictionaryError(f"FIX data dictionary {where}: not valid XML ({exc})") from None
        return cls._build(root, str(where), validate_user_defined_fields, check_fields_out_of_order)

    @classmethod
    def _build(cls, root: ET.Element, source: str, user_defined: bool, out_of_order: bool) -> DataDictionary:
        def fail(what: str) -> DictionaryError:
            return DictionaryError(f"FIX data dictionary {source}: {what}")

        if root.tag != "fix" or root.get("type", "FIX") != "FIX" or root.get("major") != "4":
            raise fail("not a FIX 4.x dictionary (expected <fix type='FIX' major='4' minor='N'>)")
        begin_string = f"FIX.{root.get('major')}.{root.get('minor')}"
        types: dict[int, str] = {}
        enums: dict[int, frozenset[str]] = {}
        names: dict[str, int] = {}
        for f in root.findall("./fields/field"):
            number, name = f.get("number", ""), f.get("name", "")
            if not number.isdigit() or not name:
                raise fail(f"field {name or '?'} has no valid number")
            tag = int(number)
            names[name] = tag
            types[tag] = (f.get("type") or "STRING").upper()
            values = frozenset(v.get("enum", "") for v in f.findall("value"))
            if values:
                enums[tag] = values
        components = {c.get("name", ""): c for c in root.findall("./components/component")}

        def shape_of(node: ET.Element, trail: tuple[str, ...] = ()) -> tuple[list[int], list[int], set[int], dict[int, _Group]]:
            """(top-level tags in order, required tags, every tag inside, groups) of ``node``'s children."""
            tags: list[int] = []
            required: list[int] = []
            inside: set[int] = set()
            groups: dict[int, _Group] = {}
            for child in node:
                name = child.get("name", "")
                is_required = child.get("required", "N").upper() == "Y"
                if child.tag == "field":
                    if name not in names:
                        raise fail(f"field {name!r} is used but not defined in <fields>")
                    tag = names[name]
                    tags.append(tag)
                    inside.add(tag)
                    if is_required:
                        required.append(tag)
                elif child.tag == "component":
                    if name not in components:
                        raise fail(f"component {name!r} is used but not defined in <components>")
                    if name in trail:
                        raise fail(f"component {name!r} contains itself")
                    c_tags, c_required, c_inside, c_groups = shape_of(components[name], (*trail, name))
                    tags += c_tags
                    inside |= c_inside
                    groups.update(c_groups)
                    if is_required:  # QuickFIX: a required component's required fields are required
                        required += c_required
                elif child.tag == "group":
                    if name not in names:
                        raise fail(f"group {name!r} has no NumInGroup field defined in <fields>")
                    counter = names[name]
                    g_tags, g_required, g_inside, g_groups = shape_of(child, trail)
                    if not g_tags:
                        raise fail(f"group {name!r} has no fields")
                    groups[counter] = _Group(counter, g_tags[0], frozenset(g_inside), tuple(g_required), g_groups)
                    tags.append(counter)
                    inside |= g_inside | {counter}
                    if is_required:
                        required.append(counter)
            return tags, required, inside, groups

        def shape(node: ET.Element | None) -> _Shape:
            if node is None:
                return _Shape(frozenset(), (), frozenset(), {})
            tags, required, inside, groups = shape_of(node)
            return _Shape(frozenset(tags), tuple(sorted(set(required))), frozenset(inside), groups)

        header = shape(root.find("header"))
        trailer = shape(root.find("trailer"))
        messages = {m.get("msgtype", ""): shape(m) for m in root.findall("./messages/message")}
        if not messages:
            raise fail("defines no <messages>")
        return cls(begin_string, types, enums, names, header, trailer, messages, source, user_defined, out_of_order,
                   header.all_tags)

    def field_number(self, name: str) -> int | None:
        """The tag number of field ``name`` (e.g. "ClOrdID" → 11), None when undefined."""
        return self.names.get(name)

    # ------------------------------------------------------------------ checking

    def validate(self, frame: Frame) -> tuple[str, int, int | None] | None:
        """The first problem of ``frame`` as (Text 58, SessionRejectReason 373, RefTagID 371),
        or None when it is valid (see the module docstring for the checks and their order)."""
        msg_type = frame.msg_type
        message = self.messages.get(msg_type)
        if message is None:
            return None
        pairs = frame.pairs
        if self.check_fields_out_of_order:
            out_of_order = self._out_of_order(pairs)
            if out_of_order is not None:
                return ("Tag specified out of required order", 14, out_of_order)
        present = frame.first
        for required in (self.header.required, self.trailer.required):
            for tag in required:
                if tag not in present and tag not in (9, 10):  # framing checked them already
                    return ("Required tag missing", 1, tag)
        header: list[tuple[int, str]] = []
        trailer: list[tuple[int, str]] = []
        body: list[tuple[int, str]] = []
        for tag, value in pairs:
            if tag in (8, 9, 35, 10):
                continue
            (header if tag in self._header_tags or is_header_tag(tag) else trailer if tag in self.trailer.all_tags else body).append((tag, value))
        problem = self._required(message.required, message.groups, body)
        if problem is not None:
            return problem
        for section, allowed in ((header, self.header.all_tags), (trailer, self.trailer.all_tags)):
            for tag, value in section:
                problem = self._field(tag, value, allowed)
                if problem is not None:
                    return problem
        for tag, value in sorted(body, key=lambda p: p[0]):
            problem = self._field(tag, value, message.all_tags)
            if problem is not None:
                return problem
        return self._group_counts(body, message.groups)

    def _out_of_order(self, pairs) -> int | None:
        """The first header tag after a body or trailer field, or the first field after the trailer."""
        seen_body = seen_trailer = False
        trailer_tags = self.trailer.all_tags
        for tag, _value in pairs[3:] if len(pairs) > 3 else ():
            if tag == 10:
                continue
            in_header = tag in self._header_tags or is_header_tag(tag)
            if in_header and (seen_body or seen_trailer):
                return tag
            if tag in trailer_tags:
                seen_trailer = True
            elif not in_header:
                if seen_trailer:
                    return tag
                seen_body = True
        return None

    def _required(self, required: tuple[int, ...], groups: dict[int, _Group], body) -> tuple[str, int, int] | None:
        top = {tag for tag, _ in body}
        for tag in required:
            if tag not in top:
                return ("Required tag missing", 1, tag)
        for instance_fields, group in self._instances(body, groups):
            for fields in instance_fields:
                present = {t for t, _ in fields}
                for tag in group.required:
                    if tag not in present:
                        return ("Required tag missing", 1, tag)
                problem = self._required((), group.groups, fields)
                if problem is not None:
                    return problem
        return None

    def _instances(self, fields, groups: dict[int, _Group]):
        """Each group present in ``fields``: ([fields of each instance], its definition)."""
        out = []
        i = 0
        while i < len(fields):
            tag = fields[i][0]
            group = groups.get(tag)
            i += 1
            if group is None:
                continue
            instances: list[list[tuple[int, str]]] = []
            while i < len(fields) and fields[i][0] in group.tags:
                if fields[i][0] == group.delimiter or not instances:
                    instances.append([])
                instances[-1].append(fields[i])
                i += 1
            out.append((instances, group))
        return out

    def _group_counts(self, fields, groups: dict[int, _Group]) -> tuple[str, int, int] | None:
        i = 0
        while i < len(fields):
            tag, value = fields[i]
            group = groups.get(tag)
            i += 1
            if group is None:
                continue
            count = 0
            start = i
            while i < len(fields) and fields[i][0] in group.tags:
                if fields[i][0] == group.delimiter:
                    count += 1
                i += 1
            if not value.isdigit() or int(value) != count:
                return ("Incorrect NumInGroup count for repeating group", 16, tag)
            problem = self._group_counts(fields[start:i], group.groups)
            if problem is not None:
                return problem
        return None

    def _field(self, tag: int, value: str, allowed: frozenset[int]) -> tuple[str, int, int] | None:
        kind = self.types.get(tag)
        if kind is not None and not _format_ok(kind, value):
            return ("Incorrect data format for value", 6, tag)
        values = self.enums.get(tag)
        if values is not None and not _enum_ok(kind, value, values):
            return ("Value is incorrect (out of range) for this tag", 5, tag)
        if tag >= USER_MIN and not self.validate_user_defined_fields:
            return None
        if kind is None:
            return ("Invalid tag number", 0, tag)
        if tag not in allowed:
            return ("Tag not defined for this message type", 2, tag)
        return None


def _format_ok(kind: str, value: str) -> bool:
    if kind in _INT_TYPES:
        return bool(_INT.match(value))
    if kind in _NUMERIC_TYPES:
        return bool(_FLOAT.match(value))
    if kind == "CHAR":
        return len(value) == 1
    if kind == "BOOLEAN":
        return value in ("Y", "N")
    if kind == "UTCTIMESTAMP":
        return _parses(value, _TIMESTAMP_FORMATS)
    if kind in ("UTCTIMEONLY", "UTCTIME"):
        return _parses(value, ("%H:%M:%S", "%H:%M:%S.%f"))
    if kind in ("UTCDATEONLY", "UTCDATE", "LOCALMKTDATE", "DATE"):
        return _parses(value, ("%Y%m%d",))
    return True  # STRING, MULTIPLEVALUESTRING, EXCHANGE, CURRENCY, COUNTRY, DATA, MONTHYEAR, ...


def _enum_ok(kind: str | None, value: str, values: frozenset[str]) -> bool:
    if kind in ("MULTIPLEVALUESTRING", "MULTIPLESTRINGVALUE", "MULTIPLECHARVALUE"):
        return all(part in values for part in value.split(" ") if part)
    return value in values


def _parses(value: str, formats: tuple[str, ...]) -> bool:
    for fmt in formats:
        try:
            datetime.strptime(value, fmt)
            return True
        except ValueError:
            continue
    return False
