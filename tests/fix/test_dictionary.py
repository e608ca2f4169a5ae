"""Data dictionaries (``[venues.fix] data_dictionary``): loading errors name the file and the
problem; the settings refuse a file that does not load or is for another version; the checks
the acceptance scripts do not reach (user-defined tags off, nested groups, unknown types)."""

from __future__ import annotations

import pytest

from config import ConfigError, load_settings
from protocols.venues.fix._codec import Framer, encode
from protocols.venues.fix._dictionary import DataDictionary, DictionaryError

from .test_acceptance import SCRIPTS

SPEC = SCRIPTS / "spec"
needs_spec = pytest.mark.skipif(not SPEC.exists(), reason=f"QuickFIX data dictionaries not found at {SPEC}")

SMALL = """<fix type='FIX' major='4' minor='4'>
 <header><field name='BeginString' required='Y'/><field name='BodyLength' required='Y'/><field name='MsgType' required='Y'/>
  <field name='SenderCompID' required='Y'/><field name='TargetCompID' required='Y'/><field name='MsgSeqNum' required='Y'/>
  <field name='SendingTime' required='Y'/></header>
 <trailer><field name='CheckSum' required='Y'/></trailer>
 <messages>
  <message name='Basket' msgtype='U1' msgcat='app'>
   <field name='ClOrdID' required='Y'/>
   <group name='NoLegs' required='N'>
    <field name='LegSymbol' required='Y'/>
    <group name='NoLegStipulations' required='N'><field name='LegStipulationType' required='Y'/></group>
   </group>
  </message>
 </messages>
 <components/>
 <fields>
  <field number='8' name='BeginString' type='STRING'/><field number='9' name='BodyLength' type='LENGTH'/>
  <field number='35' name='MsgType' type='STRING'/><field number='49' name='SenderCompID' type='STRING'/>
  <field number='56' name='TargetCompID' type='STRING'/><field number='34' name='MsgSeqNum' type='SEQNUM'/>
  <field number='52' name='SendingTime' type='UTCTIMESTAMP'/><field number='10' name='CheckSum' type='STRING'/>
  <field number='11' name='ClOrdID' type='STRING'/><field number='555' name='NoLegs' type='NUMINGROUP'/>
  <field number='600' name='LegSymbol' type='STRING'/><field number='683' name='NoLegStipulations' type='NUMINGROUP'/>
  <field number='688' name='LegStipulationType' type='STRING'/>
 </fields>
</fix>"""


def _frame(*body, msg_type: str = "U1"):
    header = [(34, 2), (49, "B"), (52, "20260105-12:00:00.000"), (56, "A")]
    return Framer().feed(encode("FIX.4.4", msg_type, [*header, *body]))[0]


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "small.xml"
    path.write_text(SMALL)
    return path


def test_nested_groups_are_counted_and_their_required_fields_checked(small) -> None:
    d = DataDictionary.load(small)
    assert d.validate(_frame((11, "x"), (555, 2), (600, "A"), (683, 1), (688, "S"), (600, "B"))) is None
    assert d.validate(_frame((11, "x"), (555, 1), (600, "A"), (683, 2), (688, "S"))) == (
        "Incorrect NumInGroup count for repeating group", 16, 683)
    assert d.validate(_frame((11, "x"), (555, 1), (600, "A"), (683, 1), (688, "S"), (600, "B"))) == (
        "Incorrect NumInGroup count for repeating group", 16, 555)
    assert d.validate(_frame((11, "x"), (555, 1), (600, "A"), (683, 1), (600, "B"))) is not None
    assert d.validate(_frame((555, 1), (600, "A"))) == ("Required tag missing", 1, 11)


def test_user_defined_tags_are_rejected_unless_told_otherwise(small) -> None:
    assert DataDictionary.load(small).validate(_frame((11, "x"), (5001, "house"))) == ("Invalid tag number", 0, 5001)
    lenient = DataDictionary.load(small, validate_user_defined_fields=False)
    assert lenient.validate(_frame((11, "x"), (5001, "house"))) is None
    assert lenient.validate(_frame(msg_type="ZZ")) is None  # a message type it does not define: not checked


@pytest.mark.parametrize(("text", "problem"), [
    ("<fix", "not valid XML"),
    ("<fix type='FIX' major='5' minor='0'><messages/></fix>", "not a FIX 4.x dictionary"),
    ("<fix type='FIX' major='4' minor='4'><messages><message msgtype='D'><field name='Nope' required='Y'/></message>"
     "</messages><fields/></fix>", "field 'Nope' is used but not defined"),
    ("<fix type='FIX' major='4' minor='4'><messages><message msgtype='D'><component name='Gone' required='Y'/></message>"
     "</messages><fields/></fix>", "component 'Gone' is used but not defined"),
])
def test_a_bad_dictionary_file_is_named_with_its_problem(tmp_path, text: str, problem: str) -> None:
    path = tmp_path / "bad.xml"
    path.write_text(text)
    with pytest.raises(DictionaryError, match=problem) as err:
        DataDictionary.load(path)
    assert str(path) in str(err.value)
    with pytest.raises(DictionaryError, match="cannot read it"):
        DataDictionary.load(tmp_path / "missing.xml")


@needs_spec
def test_settings_refuse_a_dictionary_that_does_not_load_or_is_for_another_version(tmp_path) -> None:
    base = {"port": 9876, "sender_comp_id": "CLIENT1", "target_comp_id": "EXECUTOR"}
    settings = load_settings("test", state_dir=tmp_path, venues={"fix": {**base, "data_dictionary": str(SPEC / "FIX44.xml")}})
    assert settings.venues.fix.data_dictionary == SPEC / "FIX44.xml"
    with pytest.raises(ConfigError, match=r"venues.fix.data_dictionary.*FIX.4.2 dictionary, but begin_string is FIX.4.4"):
        load_settings("test", state_dir=tmp_path, venues={"fix": {**base, "data_dictionary": str(SPEC / "FIX42.xml")}})
    with pytest.raises(ConfigError, match=r"venues.fix.data_dictionary.*cannot read it"):
        load_settings("test", state_dir=tmp_path, venues={"fix": {**base, "data_dictionary": str(tmp_path / "nope.xml")}})
