"""Same person / seen again / how many times, read from ids and the detector's ``reidentified``
attribute (`vidchat.text.identity`), and answered by code through `facts_for`."""

from __future__ import annotations

from vidchat.kernel.record import ObjectTrack, TrackPoint
from vidchat.testing.records import small_record
from vidchat.text.facts import facts_for
from vidchat.text.identity import link_of, on_screen_at, stretches

REID = "seen 00:02–00:12, 00:46–00:58; same appearance after the cut at 00:46 (similarity 0.95)"


def record():
    """small_record with person#1 re-identified after the cut at 00:45 (two stretches, one id)
    and a third person seen only from 00:50."""
    c = small_record()
    p1 = c.objects[0]
    p1.last_seen = 58.0
    p1.attributes["reidentified"] = REID
    c.objects.append(
        ObjectTrack(
            id="person#3",
            label="person",
            first_seen=50.0,
            last_seen=52.0,
            source="detect",
            confidence=0.9,
            trajectory=[TrackPoint(t=50.0, box=(0, 0, 9, 9), score=0.9)],
        )
    )
    c.objects[1].first_seen, c.objects[1].last_seen = 15.0, 40.0  # person#2 leaves before the cut
    return c  # fmt: skip


def test_stretches_and_link_come_from_the_attribute():
    c = record()
    p1 = c.objects[0]
    assert stretches(p1) == [(2.0, 12.0), (46.0, 58.0)]
    assert link_of(p1) == "same appearance after the cut at 00:46 (similarity 0.95)"
    assert stretches(c.objects[1]) == [(15.0, 40.0)] and link_of(c.objects[1]) is None
    # Between its stretches a re-identified person is not on screen.
    assert [o.id for o in on_screen_at(c, 30.0, {"person"})] == ["person#2"]
    assert [o.id for o in on_screen_at(c, 47.0, {"person"})] == ["person#1"]


def test_same_person_across_the_cut_is_yes_with_how_and_similarity():
    f = facts_for("Is the person at 00:47 the same as at the start?", record())
    assert f.kind == "identity" and f.direct is not None
    assert f.direct.startswith(
        "Yes, by appearance: person#1 is the one at [00:47] and at the start"
    )
    assert "similarity 0.95" in f.direct and "not a recognised identity" in f.direct
    assert any("reidentified" in ln for ln in f.lines)


def test_different_ids_are_not_the_same_person():
    c = record()
    f = facts_for("Is the person seen at 00:20 the same as the one seen at 00:47?", c)
    assert f.direct is not None and f.direct.startswith("No link in the record")
    assert "person#2" in f.direct and "different ids" in f.direct
    # Two on screen at one of the times, neither at the other: still no, and both named.
    two = facts_for("Is the person seen at 00:20 the same as the one seen at 00:51?", c)
    assert two.direct is not None and two.direct.startswith("No object is on screen at both")
    assert "person#1, person#3" in two.direct


def test_seen_again_and_how_many_times():
    c = record()
    again = facts_for("When is the person seen at 00:05 seen again?", c)
    assert again.direct is not None
    assert again.direct.startswith("Yes: person#1 (at 00:05) is seen again at [00:46–00:58]")
    times = facts_for("How many times does person#1 appear?", c)
    assert times.direct is not None and times.direct.startswith("person#1 appears 2 times")
    once = facts_for("How many times does person#2 appear?", c)
    assert once.direct is not None and once.direct.startswith("person#2 appears once")
    first = facts_for("Is the first person to appear seen again later?", c)
    assert first.direct is not None and first.direct.startswith("Yes: person#1 (the first person)")
    never = facts_for("Is person#2 seen again later?", c)
    assert never.direct is not None and never.direct.startswith("No: person#2 is not seen again")


def test_not_an_identity_question_and_nobody_there():
    c = record()
    assert facts_for("How many persons are there?", c).kind == "count"
    assert facts_for("What is said at 00:21?", c).kind == "said"
    nobody = facts_for("Is the person at 00:59 the same as person#2?", c)
    assert (
        nobody.direct is not None and "nothing of that kind on screen at [00:59]" in nobody.direct
    )


def test_a_follow_up_opening_with_and_is_still_answered_by_code():
    # "And is person#1 the same as …?" is what a resolved follow-up reads like; the opening
    # "And" joins it to the conversation (found on vtest: it went to the model, which
    # invented a second stretch for person#1).
    c = record()
    for opening in ("And", "So", "and then,"):
        f = facts_for(f"{opening} is person#2 the same as the one at 00:47?", c)
        assert f.kind == "identity" and f.direct is not None, opening
        assert f.direct.startswith("No")
    compound = facts_for("Is person#2 the same as the one at 00:47 and why?", c)
    assert compound.direct is None  # a real compound question still goes to the model
