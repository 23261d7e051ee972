"""QA items from geometry, their checks, and the answer scoring helpers."""

from __future__ import annotations

import numpy as np
import pytest
from datagen import src
from hypothesis import given, settings
from hypothesis import strategies as st

from tas_bench.data.manifest import QA_CATEGORIES, QAItem, Source
from tas_bench.data.qa import (
    QUESTION_TYPES,
    answer_correct,
    asks_larger,
    check_qa,
    make_qa,
    normalize_answer,
    parse_direction,
    parse_distance,
)

DOG = src("dog", -120.0, -20.0, 5.1)  # right, behind, below, 5m
BELL = src("church bell", 40.0, 30.0, 2.0)  # left, front, above, 2m
PAIR = [DOG, BELL]


def test_question_types_map_to_manifest_categories() -> None:
    assert set(QUESTION_TYPES.values()) == set(QA_CATEGORIES)


def test_single_source_items() -> None:
    items = make_qa("single_doa_de", [DOG], np.random.default_rng(0))
    assert [(i.question_type, i.category, i.answer) for i in items] == [
        ("DOA", "DOA", "right, behind, below"), ("DISTANCE", "DE", "5m")]
    assert all("dog" in i.question for i in items)
    assert all(check_qa(i, [DOG]) == [] for i in items)


def test_double_source_items() -> None:
    items = make_qa("double_doa_de", PAIR, np.random.default_rng(1))
    got = {(i.question_type, i.answer) for i in items}
    assert got == {("MIXUP_SINGLE_DOA", "right, behind, below"), ("MIXUP_SINGLE_DISTANCE", "5m"),
                   ("MIXUP_SINGLE_DOA", "left, front, above"), ("MIXUP_SINGLE_DISTANCE", "2m")}
    assert all(check_qa(i, PAIR) == [] for i in items)


def test_relative_direction_items() -> None:
    items = make_qa("relative_direction", PAIR, np.random.default_rng(2))
    assert {i.category for i in items} == {"Direction"}
    assert len(items) == 6  # all three axes clearly separated
    for i in items:
        assert check_qa(i, PAIR) == [], i
        if i.question_type == "MIXUP_DIRECTION":
            assert i.answer in ("Yes", "No")
        else:
            assert i.answer in ("dog", "church bell")


def test_relative_distance_items() -> None:
    items = make_qa("relative_distance", PAIR, np.random.default_rng(3))
    assert {i.category for i in items} == {"Distance"}
    apart = [i for i in items if i.answer.endswith("m")]
    # dog (5.1 m) and bell (2 m) positions are ~6.96 m apart -> 7m
    assert [i.answer for i in apart] == ["7m"]
    assert all(check_qa(i, PAIR) == [] for i in items)


def test_hand_written_items_checked() -> None:
    def item(q: str, a: str, qt: str) -> QAItem:
        return QAItem(q, a, QUESTION_TYPES[qt], qt)

    assert check_qa(item("Is the dog to the left of the church bell?", "No",
                         "MIXUP_DIRECTION"), PAIR) == []
    assert check_qa(item("Is the dog to the left of the church bell?", "Yes",
                         "MIXUP_DIRECTION"), PAIR)
    assert check_qa(item("Is the church bell above the dog?", "Yes", "MIXUP_DIRECTION"),
                    PAIR) == []
    assert check_qa(item("Which sound is higher, the dog or the church bell?", "church bell",
                         "MIXUP_NONBINARY_DIRECTION"), PAIR) == []
    assert check_qa(item("Which sound is higher, the dog or the church bell?", "dog",
                         "MIXUP_NONBINARY_DIRECTION"), PAIR)
    assert check_qa(item("Is the dog farther from the listener than the church bell?", "Yes",
                         "MIXUP_DISTANCE_BOTH"), PAIR) == []
    assert check_qa(item("Which sound is closer to the listener, the dog or the church bell?",
                         "church bell", "MIXUP_NONBINARY_DISTANCE"), PAIR) == []
    assert check_qa(item("How far apart are the dog and the church bell?", "6.5m",
                         "MIXUP_NONBINARY_DISTANCE"), PAIR)
    assert check_qa(item("How far away is the dog?", "5m", "MIXUP_SINGLE_DISTANCE"), PAIR) == []
    assert check_qa(item("How far away is the cat?", "5m", "MIXUP_SINGLE_DISTANCE"), PAIR)
    # a relation word of the wrong question type, wrong category, unknown type
    assert check_qa(item("Is the dog closer to the listener than the church bell?", "No",
                         "MIXUP_DIRECTION"), PAIR)
    assert check_qa(QAItem("How far away is the dog?", "5m", "DOA", "DISTANCE"), [DOG])
    assert check_qa(QAItem("How far away is the dog?", "5m", "DE", "NOPE"), [DOG])


def test_make_qa_refuses_bad_input() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="distinct labels"):
        make_qa("double_doa_de", [DOG, src("dog", 40.0, 30.0, 2.0)], rng)
    with pytest.raises(ValueError, match="needs 1"):
        make_qa("single_doa_de", PAIR, rng)
    with pytest.raises(ValueError, match="every axis"):
        make_qa("relative_direction", [DOG, src("bell", -121.0, -20.0, 5.0)], rng)
    with pytest.raises(ValueError, match="unknown"):
        make_qa("nonsense", [DOG], rng)
    assert make_qa("real", [], rng) == []


def test_relative_distance_close_distances_only_apart() -> None:
    a, b = src("dog", 90.0, 10.0, 3.0), src("bell", -90.0, 10.0, 3.2)
    items = make_qa("relative_distance", [a, b], np.random.default_rng(0))
    assert [i.answer for i in items] == ["6m"]


# --------------------------------------------------------------------------- scoring


@pytest.mark.parametrize("qtype,question,larger", [
    ("MIXUP_DIRECTION", "Is the dog to the left of the bell?", True),
    ("MIXUP_DIRECTION", "Is the sound of dog to the right of the sound of bell?", False),
    ("MIXUP_DIRECTION", "Is the dog in front of the bell?", True),
    ("MIXUP_DIRECTION", "Is the dog behind the bell?", False),
    ("MIXUP_DIRECTION", "Is the dog above the bell?", True),
    ("MIXUP_DIRECTION", "Is the dog below the bell?", False),
    ("MIXUP_NONBINARY_DIRECTION", "Which sound is further to the front, the dog or the bell?", True),
    ("MIXUP_NONBINARY_DIRECTION", "Of the dog and the bell, which is further back?", False),
    ("MIXUP_NONBINARY_DIRECTION", "Which sound is higher, the dog or the bell?", True),
    ("MIXUP_NONBINARY_DIRECTION", "Which sound is lower, the dog or the bell?", False),
    ("MIXUP_DISTANCE_BOTH", "Is the dog farther from the listener than the bell?", True),
    ("MIXUP_DISTANCE_BOTH", "Is the dog further away from the listener than the bell?", True),
    ("MIXUP_DISTANCE_BOTH", "Is the dog nearer to the listener than the bell?", False),
    ("MIXUP_NONBINARY_DISTANCE", "Which sound is closer to the listener, the dog or the bell?", False),
    ("MIXUP_NONBINARY_DISTANCE", "Of the dog and the bell, which is farther from the listener?", True),
    ("MIXUP_NONBINARY_DISTANCE", "How far apart are the dog and the bell?", None),
    ("DOA", "In which direction is the dog?", None),
    ("MIXUP_SINGLE_DISTANCE", "How far away is the dog?", None),
    ("MIXUP_DIRECTION", "Is the dog closer to the listener than the bell?", None),  # wrong type
    ("NOT_A_TYPE", "Is the dog to the left of the bell?", None),
])
def test_asks_larger_by_hand(qtype: str, question: str, larger: bool | None) -> None:
    assert asks_larger(qtype, question) is larger


def test_relation_readings_by_hand() -> None:
    from tas_bench.data.qa import RelationReading, relation_readings

    r = relation_readings("MIXUP_DIRECTION", "Is the sound of dog to the right of the sound of bell?")
    assert RelationReading("dog", "bell", "E", False, "yes_no") in r
    assert RelationReading("sound of dog", "sound of bell", "E", False, "yes_no") in r
    assert r[0].answer(a_larger=True) == "No" and r[0].answer(a_larger=False) == "Yes"
    (w,) = relation_readings("MIXUP_NONBINARY_DISTANCE",
                             "Which sound is closer to the listener, the dog or the bell?")
    assert w == RelationReading("dog", "bell", "G", False, "which")
    assert w.answer(a_larger=True) == "bell" and w.answer(a_larger=False) == "dog"
    assert relation_readings("MIXUP_NONBINARY_DISTANCE", "How far apart are the dog and the bell?") == []
    assert relation_readings("DOA", "In which direction is the dog?") == []


def test_normalize_answer() -> None:
    assert normalize_answer("  The Dog. ") == "dog"
    assert normalize_answer("the sound of the church bell") == "church bell"
    assert normalize_answer("3.50 meters") == "3.5m"
    assert normalize_answer("Yes.") == "yes"
    assert normalize_answer('"2 m"') == "2m"


def test_parse_helpers() -> None:
    assert parse_direction("It is behind you, to the right and below") == ("right", "behind", "below")
    assert parse_direction("left, front") is None
    assert parse_direction("left or right, front, above") is None
    assert parse_direction("right, back, above") == ("right", "behind", "above")
    assert parse_distance("3.5m") == 3.5
    assert parse_distance("about 3.5 meters away") == 3.5
    assert parse_distance("250 cm") == 2.5
    assert parse_distance("right, behind, above; 3.5m") == 3.5
    assert parse_distance("4") == 4.0
    assert parse_distance("far away") is None


@pytest.mark.parametrize("cat,pred,truth,ok", [
    ("DOA", "left, front, above", "left, front, above", True),
    ("DOA", "front, above, left", "left, front, above", True),
    ("DOA", "The sound is on the left, in front, above.", "left, front, above", True),
    ("DOA", "right, front, above", "left, front, above", False),
    ("DOA", "left, front", "left, front, above", False),
    ("DOA", "left, behind, below; 2m", "left, behind, below; 7.5m", True),
    ("DE", "3.5m", "3.5m", True),
    ("DE", "4 meters", "3.5m", True),
    ("DE", "4.5m", "3.5m", False),
    ("DE", "3m", "right, behind, above; 3.5m", True),
    ("DE", "no idea", "3.5m", False),
    ("Direction", "Yes", "Yes", True),
    ("Direction", "yes, it is", "Yes", True),
    ("Direction", "No", "Yes", False),
    ("Direction", "The dog", "dog", True),
    ("Direction", "cat", "dog", False),
    ("Direction", "left", "left", True),
    ("Direction", "right", "left", False),
    ("Distance", "2.5m", "2m", True),
    ("Distance", "3.5m", "2.5m", False),
    ("Distance", "No.", "no", True),
    ("Distance", "church bell", "church bell", True),
    ("Distance", "dog", "church bell", False),
])
def test_answer_correct(cat: str, pred: str, truth: str, ok: bool) -> None:
    assert answer_correct(cat, "ANY", pred, truth) is ok


def test_answer_correct_unknown_category() -> None:
    with pytest.raises(ValueError):
        answer_correct("Colour", "X", "red", "red")


@st.composite
def scene(draw):
    def one(label: str) -> Source:
        q = draw(st.integers(0, 3))
        az = draw(st.floats(5.0, 85.0)) + 90.0 * q - 180.0
        el = draw(st.floats(5.0, 80.0)) * draw(st.sampled_from([-1.0, 1.0]))
        return src(label, az, el, draw(st.floats(0.5, 10.0)))
    return [one("dog"), one("glass breaking")]


@settings(max_examples=120, deadline=None)
@given(scene(), st.integers(0, 2**32 - 1),
       st.sampled_from(["single_doa_de", "double_doa_de", "relative_direction",
                        "relative_distance"]))
def test_generated_items_consistent_and_self_scoring(pair, seed, category) -> None:
    srcs = pair[:1] if category == "single_doa_de" else pair
    try:
        items = make_qa(category, srcs, np.random.default_rng(seed))
    except ValueError:
        assert category == "relative_direction"
        return
    assert items
    for it in items:
        assert it.category == QUESTION_TYPES[it.question_type]
        assert check_qa(it, srcs) == []
        assert answer_correct(it.category, it.question_type, it.answer, it.answer)
        # every yes/no and which-is item has a polarity; DOA, distances, "how far apart" none
        relational = it.answer in ("Yes", "No") or it.question.startswith(("Which", "Of the"))
        assert (asks_larger(it.question_type, it.question) is not None) == relational
        if it.answer in ("Yes", "No"):
            flipped = "No" if it.answer == "Yes" else "Yes"
            assert not answer_correct(it.category, it.question_type, flipped, it.answer)
