"""Prompts and QA answers against geometry worked out by hand (not by the generator's own
``relation_of`` / ``prompt_facts`` / ``direction_words``).

Each case places two sources at Cartesian positions written here (x front, y left, z up,
metres) that differ on exactly one axis, and writes out the direction words, distances and the
relation a reader of the scene would state. The sources' spherical coordinates come from an
inverse written in this file, so the generator's forward conversion is checked too. The
minimum relation gap (0.5 m) is checked at, just above and just below it, with sources on a
coordinate axis where the coordinate equals the distance exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tas_bench.data.geometry import direction_words, format_distance
from tas_bench.data.manifest import Provenance, QAItem, Source
from tas_bench.data.prompts import TEMPLATES, check_prompt, make_prompt, position, prompt_facts
from tas_bench.data.qa import QUESTION_TYPES, check_qa, make_qa

DOG, BELL = "dog", "church bell"
#: Relation words, written out: (word when the subject has the larger coordinate, smaller).
LARGER = {"D": "in front of", "E": "to the left of", "F": "above"}
SMALLER = {"D": "behind", "E": "to the right of", "F": "below"}
#: "Which sound is ..." phrases won by the source with the larger / smaller coordinate.
SIDE_LARGER = {"D": "further to the front", "E": "further to the left", "F": "higher"}
SIDE_SMALLER = {"D": "further back", "E": "further to the right", "F": "lower"}
NEAR_PHRASES = ("closer to the listener than", "nearer to the listener than")
FAR_PHRASES = ("farther from the listener than", "further away from the listener than")


def spherical(x: float, y: float, z: float) -> tuple[float, float, float]:
    """(azimuth deg counter-clockwise from the front, elevation deg, distance m) of a point."""
    return (math.degrees(math.atan2(y, x)), math.degrees(math.atan2(z, math.hypot(x, y))),
            math.sqrt(x * x + y * y + z * z))


def at(label: str, xyz: tuple[float, float, float], words: str) -> Source:
    az, el, d = spherical(*xyz)
    return Source(label, az, el, d, words.split(", "), Provenance("t", "f", "cc0"))


def on_axis(label: str, az: float, el: float, d: float) -> Source:
    """A source on a coordinate axis; the boundary convention (left, front, above) names it."""
    return Source(label, az, el, d, ["left", "front", "above"], Provenance("t", "f", "cc0"))


# Each case: type, dog position + words, bell position + words, the literal facts.
CASES = {
    # E: only y differs (dog left, bell right); same distance sqrt(3) = 1.73 m -> "1.5m"
    "E": dict(dog=((1.0, 1.0, 1.0), "left, front, above"), bell=((1.0, -1.0, 1.0), "right, front, above"),
              dist=("1.5m", "1.5m"), apart="2m",
              true=[(DOG, "to the left of", BELL), (BELL, "to the right of", DOG)],
              false=[(DOG, "to the right of", BELL), (BELL, "to the left of", DOG)]),
    # F: only z differs (dog above, bell below)
    "F": dict(dog=((1.0, 1.0, 1.0), "left, front, above"), bell=((1.0, 1.0, -1.0), "left, front, below"),
              dist=("1.5m", "1.5m"), apart="2m",
              true=[(DOG, "above", BELL), (BELL, "below", DOG)],
              false=[(DOG, "below", BELL), (BELL, "above", DOG)]),
    # D: only x differs (dog in front, bell behind)
    "D": dict(dog=((1.0, 1.0, 1.0), "left, front, above"), bell=((-1.0, 1.0, 1.0), "left, behind, above"),
              dist=("1.5m", "1.5m"), apart="2m",
              true=[(DOG, "in front of", BELL), (BELL, "behind", DOG)],
              false=[(DOG, "behind", BELL), (BELL, "in front of", DOG)]),
    # G: same direction, only the distance differs: 1.73 m ("1.5m") vs 3.46 m ("3.5m"),
    # 1.73 m apart ("1.5m")
    "G": dict(dog=((1.0, 1.0, 1.0), "left, front, above"), bell=((2.0, 2.0, 2.0), "left, front, above"),
              dist=("1.5m", "3.5m"), apart="1.5m",
              true=[(DOG, p, BELL) for p in NEAR_PHRASES] + [(BELL, p, DOG) for p in FAR_PHRASES],
              false=[(DOG, p, BELL) for p in FAR_PHRASES] + [(BELL, p, DOG) for p in NEAR_PHRASES]),
    # C: right/below vs right/above, only z differs by 1.5 m
    "C": dict(dog=((1.0, -1.0, -0.5), "right, front, below"), bell=((1.0, -1.0, 1.0), "right, front, above"),
              dist=("1.5m", "1.5m"), apart="1.5m", true=[], false=[]),
}


def _sources(case: dict) -> list[Source]:
    return [at(DOG, *case["dog"]), at(BELL, *case["bell"])]


def _fill(template: str, s: str, rel: str, o: str) -> str:
    text = template.format(a=s, rel=rel, b=o)
    return text[:1].upper() + text[1:]


@pytest.mark.parametrize("ptype", list(CASES))
def test_positions_words_and_distances(ptype: str) -> None:
    case = CASES[ptype]
    for src, (xyz, words), dist in zip(_sources(case), (case["dog"], case["bell"]), case["dist"]):
        np.testing.assert_allclose(position(src), xyz, atol=1e-12)
        assert ", ".join(direction_words(src.azimuth, src.elevation)) == words
        assert format_distance(src.distance) == dist
        a = prompt_facts("A", [src])["sources"][0]
        assert a["direction"] == words.split(", ") and f"{a['distance']:g}m" == dist
        prompt = f"The {src.label} is located {words}, {dist} away."
        assert check_prompt(prompt, "A", [src]) == []
        for axis in range(3):  # one wrong word is a wrong prompt
            w = words.split(", ")
            w[axis] = {"left": "right", "right": "left", "front": "behind", "behind": "front",
                       "above": "below", "below": "above"}[w[axis]]
            assert check_prompt(f"The {src.label} is located {', '.join(w)}, {dist} away.",
                                "A", [src])


@pytest.mark.parametrize("ptype", list(CASES))
def test_distance_between_the_sources(ptype: str) -> None:
    case = CASES[ptype]
    srcs = _sources(case)
    assert prompt_facts("C", srcs)["distance"] == float(case["apart"][:-1])
    assert check_prompt(f"The {DOG} and the {BELL} are {case['apart']} apart.", "C", srcs) == []
    wrong = f"{float(case['apart'][:-1]) + 0.5:g}m"
    assert check_prompt(f"The {DOG} and the {BELL} are {wrong} apart.", "C", srcs)
    apart = [i for i in make_qa("relative_distance", srcs, np.random.default_rng(0))
             if i.question.startswith(("How far apart", "What is the distance"))]
    assert [i.answer for i in apart] == [case["apart"]]


@pytest.mark.parametrize("ptype", ["D", "E", "F", "G"])
def test_relation_prompts(ptype: str) -> None:
    case = CASES[ptype]
    srcs = _sources(case)
    allowed = {_fill(t, *tr) for t in TEMPLATES[ptype] for tr in case["true"]}
    for seed in range(40):
        assert make_prompt(ptype, srcs, np.random.default_rng(seed)) in allowed
    for s, rel, o in case["true"]:
        assert check_prompt(f"The {s} is {rel} the {o}.", ptype, srcs) == [], (s, rel, o)
    for s, rel, o in case["false"]:
        assert check_prompt(f"The {s} is {rel} the {o}.", ptype, srcs), (s, rel, o)
    # the sources do not differ on the other axes: no relation may be stated there
    others = {"D": "EFG", "E": "DFG", "F": "DEG", "G": ""}[ptype]
    for other in others:
        with pytest.raises(ValueError, match="ambiguous"):
            make_prompt(other, srcs, np.random.default_rng(0))


def _who(question: str) -> tuple[str, str]:
    """(subject, object) of a yes/no question, read by hand: the label named first."""
    i, j = question.find(DOG), question.find(BELL)
    return (DOG, BELL) if i < j else (BELL, DOG)


def _expected_answer(ptype: str, larger: str, question: str) -> str:
    """Answer to a generated question, from the literal fact "``larger`` has the larger
    coordinate" (D x, E y, F z; G: "larger" = farther)."""
    smaller = BELL if larger == DOG else DOG
    if question.startswith("Is "):
        subj, _ = _who(question)
        if ptype == "G":
            says_larger = any(p in question for p in FAR_PHRASES)
            assert says_larger or any(p in question for p in NEAR_PHRASES), question
        else:
            says_larger = f" {LARGER[ptype]} " in question
            assert says_larger or f" {SMALLER[ptype]} " in question, question
        return "Yes" if (subj == larger) == says_larger else "No"
    if ptype == "G":
        wins_larger = "farther from the listener" in question
        assert wins_larger or "closer to the listener" in question, question
    else:
        wins_larger = SIDE_LARGER[ptype] in question
        assert wins_larger or SIDE_SMALLER[ptype] in question, question
    return larger if wins_larger else smaller


@pytest.mark.parametrize("ptype,larger", [("D", DOG), ("E", DOG), ("F", DOG), ("G", BELL)])
def test_relation_questions(ptype: str, larger: str) -> None:
    srcs = _sources(CASES[ptype])
    category = "relative_distance" if ptype == "G" else "relative_direction"
    seen: set[tuple[str, str]] = set()
    for seed in range(30):
        items = make_qa(category, srcs, np.random.default_rng(seed))
        rel_items = [i for i in items if not i.question.startswith(("How far", "What is"))]
        # exactly one yes/no and one "which" item: the sources differ on one axis only
        assert sorted(i.question_type for i in rel_items) == (
            ["MIXUP_DISTANCE_BOTH", "MIXUP_NONBINARY_DISTANCE"] if ptype == "G"
            else ["MIXUP_DIRECTION", "MIXUP_NONBINARY_DIRECTION"])
        for it in rel_items:
            assert it.answer == _expected_answer(ptype, larger, it.question), it.question
            seen.add((it.question, it.answer))
    assert len(seen) >= 6  # several phrasings, orders and relation words were exercised


@pytest.mark.parametrize("ptype,yes,no,which", [
    ("E", "Is the dog to the left of the church bell?", "Is the dog to the right of the church bell?",
     [("Which sound is further to the left, the dog or the church bell?", DOG),
      ("Which sound is further to the right, the church bell or the dog?", BELL)]),
    ("F", "Is the church bell below the dog?", "Is the church bell above the dog?",
     [("Which sound is higher, the dog or the church bell?", DOG),
      ("Of the dog and the church bell, which is lower?", BELL)]),
    ("D", "Is the sound of church bell behind the sound of dog?", "Is the dog behind the church bell?",
     [("Which sound is further to the front, the dog or the church bell?", DOG),
      ("Which sound is further back, the dog or the church bell?", BELL)]),
    ("G", "Is the dog closer to the listener than the church bell?",
     "Is the church bell nearer to the listener than the dog?",
     [("Which sound is closer to the listener, the dog or the church bell?", DOG),
      ("Which sound is farther from the listener, the dog or the church bell?", BELL)]),
])
def test_hand_written_questions(ptype: str, yes: str, no: str, which: list) -> None:
    srcs = _sources(CASES[ptype])
    yn = "MIXUP_DISTANCE_BOTH" if ptype == "G" else "MIXUP_DIRECTION"
    wq = "MIXUP_NONBINARY_DISTANCE" if ptype == "G" else "MIXUP_NONBINARY_DIRECTION"

    def item(q: str, a: str, qt: str) -> QAItem:
        return QAItem(q, a, QUESTION_TYPES[qt], qt)

    assert check_qa(item(yes, "Yes", yn), srcs) == []
    assert check_qa(item(yes, "No", yn), srcs)
    assert check_qa(item(no, "No", yn), srcs) == []
    assert check_qa(item(no, "Yes", yn), srcs)
    for q, a in which:
        assert check_qa(item(q, a, wq), srcs) == [], q
        assert check_qa(item(q, BELL if a == DOG else DOG, wq), srcs), q


def test_single_source_items_written_out() -> None:
    dog = at(DOG, (-1.0, -1.0, -1.0), "right, behind, below")  # 1.73 m -> "1.5m"
    items = make_qa("single_doa_de", [dog], np.random.default_rng(0))
    assert [(i.question_type, i.answer) for i in items] == [("DOA", "right, behind, below"),
                                                            ("DISTANCE", "1.5m")]
    bell = at(BELL, (2.0, 2.0, -1.0), "left, front, below")  # 3 m -> "3m"
    items = make_qa("double_doa_de", [dog, bell], np.random.default_rng(0))
    assert {(i.question_type, i.answer) for i in items} == {
        ("MIXUP_SINGLE_DOA", "right, behind, below"), ("MIXUP_SINGLE_DISTANCE", "1.5m"),
        ("MIXUP_SINGLE_DOA", "left, front, below"), ("MIXUP_SINGLE_DISTANCE", "3m")}


# --------------------------------------------------------------------------- minimum gap

#: (type, az, el) of a ray along the type's axis: the coordinate equals the distance.
AXIS_RAY = {"D": (0.0, 0.0), "E": (90.0, 0.0), "F": (0.0, 90.0)}


@pytest.mark.parametrize("ptype", ["D", "E", "F", "G"])
@pytest.mark.parametrize("bell_d,stated", [(1.0, True), (0.999, True), (1.001, False)])
def test_minimum_relation_gap(ptype: str, bell_d: float, stated: bool) -> None:
    """dog at 1.5 m, bell at 1.0 m (gap exactly 0.5 m: stated), 0.999 m (0.501: stated) or
    1.001 m (0.499: refused), both on one ray (G: the E ray)."""
    az, el = AXIS_RAY.get(ptype, AXIS_RAY["E"])
    dog, bell = on_axis(DOG, az, el, 1.5), on_axis(BELL, az, el, bell_d)
    srcs = [dog, bell]
    words = {"D": ("in front of", "behind"), "E": ("to the left of", "to the right of"),
             "F": ("above", "below"), "G": ("farther from the listener than",
                                            "closer to the listener than")}[ptype]
    prompt_true = f"The {DOG} is {words[0]} the {BELL}."
    if stated:
        assert make_prompt(ptype, srcs, np.random.default_rng(0))
        assert check_prompt(prompt_true, ptype, srcs) == []
        assert check_prompt(f"The {DOG} is {words[1]} the {BELL}.", ptype, srcs)
    else:
        with pytest.raises(ValueError, match="ambiguous"):
            make_prompt(ptype, srcs, np.random.default_rng(0))
        assert any("ambiguous" in p for p in check_prompt(prompt_true, ptype, srcs))
    if ptype == "G":
        items = make_qa("relative_distance", srcs, np.random.default_rng(0))
        kinds = sorted(i.question_type for i in items)
        assert kinds == (["MIXUP_DISTANCE_BOTH", "MIXUP_NONBINARY_DISTANCE",
                          "MIXUP_NONBINARY_DISTANCE"] if stated else ["MIXUP_NONBINARY_DISTANCE"])
        q = QAItem("Is the dog farther from the listener than the church bell?", "Yes",
                   "Distance", "MIXUP_DISTANCE_BOTH")
    else:
        if stated:
            items = make_qa("relative_direction", srcs, np.random.default_rng(0))
            assert sorted(i.question_type for i in items) == ["MIXUP_DIRECTION",
                                                             "MIXUP_NONBINARY_DIRECTION"]
            # the dog is the larger one on this axis: written out per item
            for it in items:
                assert it.answer == _expected_answer(ptype, DOG, it.question), it.question
        else:
            with pytest.raises(ValueError, match="every axis"):
                make_qa("relative_direction", srcs, np.random.default_rng(0))
        q = QAItem(f"Is the dog {words[0]} the church bell?", "Yes", "Direction", "MIXUP_DIRECTION")
    problems = check_qa(q, srcs)
    assert (problems == []) if stated else any("ambiguous" in p for p in problems)
