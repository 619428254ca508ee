"""A quote that joins one object's facts from two record lines (the timeline's sighting and the
object list's motion) verifies when every clause is in a line naming that object, near the
quote's time; a wrong clause, another object's line or a far time does not (found on vtest,
round 6: "00:00–00:10 person#1 appears, moves right→left" was called "NOT found")."""

from __future__ import annotations

import pytest

from vidchat.conversation.evidence import verify_evidence

RECORD = """OBJECTS (3; ids are stable across the timeline):
- person#1: person, 00:00–00:03, moves right→left
- person#13: person, 00:14–00:21, moves left→right
- car#1: car, 00:00–01:19, mostly in place
TIMELINE (10 s windows):
[00:00–00:10]
  00:00 car#1 appears
  00:00 person#1 appears
  00:03 person#1 leaves
[00:10–00:20]
  00:14 person#13 appears
"""
IDS = {"person#1", "person#13", "car#1"}


@pytest.mark.parametrize(
    ("quote", "line"),
    [
        ("00:00–00:10 person#1 appears, moves right→left", "00:00 person#1 appears"),
        ("[00:00–00:10] person#1 appears, moves right→left", "00:00 person#1 appears"),
        ("00:03 person#1 leaves; moves right→left", "00:03 person#1 leaves"),
        ("car#1 appears, mostly in place", "00:00 car#1 appears"),
        # wrong: the motion of person#13, not person#1 (and "person#1" is in "person#13")
        ("00:00–00:10 person#1 appears, moves left→right", None),
        # wrong: a time far from the sighting
        ("00:40–00:50 person#1 appears, moves right→left", None),
        # wrong: two objects in one quote, or a clause no line holds
        ("00:00 person#1 and car#1 appear, moves right→left", None),
        ("00:00 person#1 walks in, waves at the camera", None),
    ],
)
def test_composite_quotes(quote: str, line: str | None) -> None:
    (e,) = verify_evidence([quote], RECORD, IDS)
    assert e.verified == (line is not None) and e.line == line
    if line is not None:
        assert e.start is not None and e.objects
