"""Synthetic records with known content, for tests, benchmarks and plugin authors.

`long_record` builds a record of an hour or more by tiling a five-minute street scene (speech,
captions, on-screen text, people coming and going) and planting distinct facts at known times;
`PLANTED` pairs each fact with a question that paraphrases it (no shared key words where
possible, no times), so retrieval has to find the fact by meaning. `small_record` is a
half-minute street scene the chat tests ask about.
"""

from __future__ import annotations

import hashlib

from vidchat.kernel.record import (
    Event,
    ObjectTrack,
    SpeechSegment,
    TrackPoint,
    VideoContext,
    VideoInfo,
)

__all__ = ["PLANTED", "long_record", "planted_questions", "small_record"]


def _info(duration: float, name: str = "street.mp4") -> VideoInfo:
    return VideoInfo(
        path=f"/videos/{name}",
        sha256=hashlib.sha256(name.encode()).hexdigest(),
        size_bytes=1000,
        duration=duration,
        fps="30/1",
        width=1280,
        height=720,
        has_audio=True,
        audio_codec="aac",
    )


def _track(oid: str, a: float, b: float, x0: float = 100, x1: float = 900) -> ObjectTrack:
    return ObjectTrack(
        id=oid,
        label=oid.split("#")[0],
        first_seen=a,
        last_seen=b,
        source="detect",
        confidence=0.9,
        trajectory=[
            TrackPoint(t=a, box=(x0, 200, x0 + 120, 500), score=0.9),
            TrackPoint(t=b, box=(x1, 200, x1 + 120, 500), score=0.9),
        ],
    )


def small_record() -> VideoContext:
    """A one-minute record: two people, a dog, speech, a sign and a shot cut."""
    return VideoContext(
        video=_info(60.0, "park.mp4"),
        profile="offline",
        objects=[
            _track("person#1", 2.0, 40.0),
            _track("person#2", 15.0, 58.0, 900, 100),
            _track("dog#1", 30.0, 45.0),
        ],
        speech=[
            SpeechSegment(start=3.0, end=6.5, text="Good morning, welcome to the park."),
            SpeechSegment(start=20.0, end=24.0, text="Look, the fountain is running again."),
            SpeechSegment(start=50.0, end=53.0, text="Let's head back before it rains."),
        ],
        events=[
            Event(start=10.0, end=10.0, kind="ocr", text="CITY PARK — OPEN 6AM-10PM", source="ocr"),
            Event(start=31.0, end=35.0, kind="caption", text="a brown dog runs across the grass",
                  source="caption", objects=["dog#1"]),
            Event(start=45.0, end=45.0, kind="shot", text="cut", source="shots"),
        ],
    )  # fmt: skip


# A five-minute street scene, tiled to make long records. Deliberately repetitive (the hard case
# for retrieval: the planted facts must stand out from near-identical windows).
_TILE_S = 300.0
_TILE_SPEECH = [
    (12.0, "Okay, we're walking down the main street now."),
    (55.0, "There are a lot of people out today."),
    (110.0, "Let's keep going, the light is nice."),
    (170.0, "I think the market is somewhere up ahead."),
    (235.0, "Mind the cyclists on the left."),
]
_TILE_EVENTS = [
    (30.0, "caption", "people walking on a sidewalk"),
    (90.0, "caption", "cars waiting at a traffic light"),
    (150.0, "tag", "street"),
    (200.0, "caption", "a crowd crossing the road"),
    (270.0, "ocr", "SALE"),
]

# (seconds into the video, kind, text, question that paraphrases it)
PLANTED: list[tuple[float, str, str, str]] = [
    (133.0, "speech", "The blue ferry to Harbor Island leaves at half past four.",
     "When is the boat to the island mentioned?"),
    (412.0, "ocr", "BAKERY - FRESH CROISSANTS DAILY",
     "Where can you see a sign for a pastry shop?"),
    (688.0, "caption", "a dog jumps into a fountain and splashes children",
     "When does an animal leap into the water?"),
    (905.0, "speech", "My grandmother taught me to play the violin when I was six.",
     "Who taught the speaker a musical instrument?"),
    (1130.0, "caption", "a man juggles flaming torches in front of a crowd",
     "When is there a fire performance?"),
    (1377.0, "speech", "I left my passport at the hotel reception, we have to go back.",
     "What travel document did someone forget?"),
    (1544.0, "ocr", "PHARMACY 24H", "Is there a drugstore open all night?"),
    (1790.0, "caption", "a red vintage convertible drives past slowly",
     "When does an old-fashioned open-top car appear?"),
    (2016.0, "speech", "The museum is closed on Mondays, so let's try tomorrow.",
     "Why can't they visit the gallery today?"),
    (2203.0, "caption", "street musicians play drums and a saxophone",
     "When is there live music on the street?"),
    (2450.0, "speech", "This ice cream shop has a pistachio flavour that is famous.",
     "Which dessert place is mentioned as well known?"),
    (2610.0, "caption", "a police officer on horseback rides through the square",
     "When does someone ride a horse?"),
    (2874.0, "ocr", "PLATFORM 9 - TRAINS TO THE AIRPORT", "Where is the railway to the airport?"),
    (3035.0, "speech", "It started snowing, I can't believe it's snowing in April.",
     "When does the weather turn wintry?"),
    (3222.0, "caption", "a child releases a bunch of yellow balloons into the sky",
     "When do balloons float away?"),
    (3391.0, "speech", "We need to buy batteries for the camera before the battery dies.",
     "What do they need for their camera?"),
    (3508.0, "caption", "a tram derails slightly and stops across the tracks",
     "When is there an accident involving public transport?"),
    (255.0, "speech", "Happy birthday Maria, we got you a chocolate cake.",
     "Whose birthday is celebrated?"),
    (560.0, "ocr", "NO PARKING - TOW AWAY ZONE", "Where is it forbidden to leave a car?"),
    (1250.0, "caption", "a woman paints a portrait on an easel by the river",
     "When is an artist working on a picture?"),
    (1960.0, "speech", "The bridge was built in eighteen ninety by Italian engineers.",
     "When was the bridge constructed, according to the speaker?"),
    (2750.0, "caption", "pigeons scatter as a boy runs through the flock",
     "When do the birds fly off?"),
    (3300.0, "speech", "My phone is at two percent, can I borrow your charger?",
     "Who is running out of phone battery?"),
    (3570.0, "ocr", "FIREWORKS TONIGHT 10PM AT THE PIER", "Is there a show planned for tonight?"),
]  # fmt: skip


def long_record(duration: float = 3660.0) -> VideoContext:
    """A record of `duration` seconds: the street tile repeated, with `PLANTED` facts added."""
    tiles = int(duration // _TILE_S) + 1
    speech: list[SpeechSegment] = []
    events: list[Event] = []
    objects: list[ObjectTrack] = []
    for k in range(tiles):
        base = k * _TILE_S
        for t, text in _TILE_SPEECH:
            if base + t + 3 < duration:
                speech.append(SpeechSegment(start=base + t, end=base + t + 3, text=text))
        for t, kind, text in _TILE_EVENTS:
            if base + t < duration:
                events.append(Event(start=base + t, end=base + t + 2, kind=kind, text=text,
                                    source=kind))  # fmt: skip
        if base + 250 < duration:
            objects.append(_track(f"person#{2 * k + 1}", base + 5, base + 120))
            objects.append(_track(f"person#{2 * k + 2}", base + 130, base + 250, 900, 100))
    for t, kind, text, _ in PLANTED:
        if t >= duration:
            continue
        if kind == "speech":
            speech.append(SpeechSegment(start=t, end=t + 4, text=text))
        else:
            events.append(Event(start=t, end=t + 3, kind=kind, text=text, source=kind))
    return VideoContext(
        video=_info(duration, "city_walk.mp4"), objects=objects, speech=speech, events=events
    ).sort()


def planted_questions(duration: float = 3660.0) -> list[tuple[str, float]]:
    """(question, time of the fact that answers it) for every planted fact in the video."""
    return [(q, t) for t, _, _, q in PLANTED if t < duration]
