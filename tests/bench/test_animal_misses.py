"""The animal-miss diagnosis puts each missed sample in the bucket its numbers say."""

from __future__ import annotations

from bench.fidelity.animal_misses import bucket, summarize


def _row(best: dict | None, geometry: bool = False, found: bool = False, **extra) -> dict:
    row = {
        "clip": "c", "label": "sheep", "background": "coffee", "height_share": 0.25,
        "moving": False, "best_animal": best, "geometry_box": [0, 0, 5, 10] if geometry else None,
        "truth_box": [0, 0, 10, 10], "found_by": ["sheep#1"] if found else [], **extra,
    }  # fmt: skip
    if best is None:
        del row["best_animal"]
    return row


def test_buckets() -> None:
    def b(best: dict | None, geometry: bool = False, runner_up: bool = False) -> str:
        return bucket(_row(best, geometry), 0.25, runner_up)

    animal = {"score": 0.3, "top_class": "sheep"}
    assert b(None) == "a_no_raw_box"
    assert b({"score": 0.02, "top_class": "sheep"}) == "a_no_raw_box"
    assert b(None, geometry=True) == "d_geometry"
    assert b({"score": 0.2, "top_class": "person"}) == "b_below_threshold"
    assert b({"score": 0.3, "top_class": "person"}) == "e_other_class_wins"
    # With runner-up proposals the animal box exists: then it is the tracker's loss.
    assert b({"score": 0.3, "top_class": "person"}, runner_up=True) == "c_lost_in_tracking"
    assert b(animal) == "c_lost_in_tracking"


def test_summary_counts_buckets_and_geometry() -> None:
    rows = [
        {**_row(None, found=True), "bucket": None},
        {**_row(None), "bucket": "a_no_raw_box"},
        {**_row(None, geometry=True), "bucket": "d_geometry"},
        {**_row({"score": 0.3, "top_class": "person"}), "bucket": "e_other_class_wins"},
    ]
    s = summarize(rows)
    assert (s["samples"], s["found"], s["missed"]) == (4, 1, 3)
    assert s["buckets"] == {"a_no_raw_box": 1, "d_geometry": 1, "e_other_class_wins": 1}
    assert s["other_class_that_wins"] == {"person": 1}
    assert s["geometry_width_height_ratio_median"] == [0.5, 1.0]
    assert s["by_moving"]["False"]["found"] == 1
