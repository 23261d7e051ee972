"""Answer scoring (``tas_bench.data.qa.answer_correct``) case by case: every DOA word on its own,
answers holding several numbers, units, yes/no with extra words, labels with punctuation.

Each expected outcome is written out here; the rules are the ones documented in
``answer_correct`` / ``parse_distance`` (REFERENCE.md section 6 Decision).
"""

from __future__ import annotations

import itertools

import pytest

from tas_bench.data.qa import answer_correct, parse_direction, parse_distance

TRUTH_DOA = "left, front, above"
OTHER = {"left": "right", "right": "left", "front": "behind", "behind": "front",
         "above": "below", "below": "above"}


# --------------------------------------------------------------------------- DOA words


@pytest.mark.parametrize("truth", [", ".join(w) for w in itertools.product(
    ("left", "right"), ("front", "behind"), ("above", "below"))])
def test_each_direction_word_matters_on_its_own(truth: str) -> None:
    words = truth.split(", ")
    assert answer_correct("DOA", "DOA", truth, truth)
    for axis in range(3):
        wrong = list(words)
        wrong[axis] = OTHER[wrong[axis]]
        assert not answer_correct("DOA", "DOA", ", ".join(wrong), truth), (axis, wrong)
        # the same single wrong word inside free text
        sentence = f"The sound comes from the {wrong[0]}, {wrong[1]} and {wrong[2]} of you."
        assert not answer_correct("DOA", "DOA", sentence, truth), sentence
        # one word missing is not an answer either
        missing = [w for i, w in enumerate(words) if i != axis]
        assert not answer_correct("DOA", "DOA", ", ".join(missing), truth), missing
    # two wrong words, all three wrong
    assert not answer_correct("DOA", "DOA", ", ".join(OTHER[w] for w in words), truth)
    assert not answer_correct("DOA", "DOA", f"{OTHER[words[0]]}, {OTHER[words[1]]}, {words[2]}",
                              truth)


@pytest.mark.parametrize("pred,ok", [
    ("left, front, above", True),
    ("above, left, front", True),                        # order does not matter
    ("Left, in front, above.", True),
    ("front-left, above", True),
    ("left, front, above; 7.5m", True),                  # the distance is not a DOA word
    ("left, back, above", False),                        # "back" means behind
    ("left, front, below", False),
    ("right, front, above", False),
    ("left, front, above or below", False),              # an axis stated both ways
    ("left or right, front, above", False),
    ("front or behind, left, above", False),
    ("", False),
])
def test_doa_free_text(pred: str, ok: bool) -> None:
    assert answer_correct("DOA", "MIXUP_SINGLE_DOA", pred, TRUTH_DOA) is ok


def test_doa_truth_with_back_and_distance() -> None:
    truth = "right, behind, below; 3.5m"
    assert answer_correct("DOA", "DOA", "right, back, below", truth)
    assert not answer_correct("DOA", "DOA", "right, front, below", truth)
    assert parse_direction(truth) == ("right", "behind", "below")


# --------------------------------------------------------------------------- numbers and units


@pytest.mark.parametrize("text,metres", [
    ("3.5m", 3.5), ("3.5 m", 3.5), ("3.5 m.", 3.5), ("3.5-metre", 3.5),
    ("3.5 metres", 3.5), ("3.5 meters", 3.5), ("1 metre", 1.0), ("1 meter", 1.0),
    ("350 cm", 3.5), ("350cm", 3.5), ("350 centimetres", 3.5), ("350 centimeters", 3.5),
    ("3500 mm", 3.5), ("0.0035 km", 3.5), (".5m", 0.5), ("4", 4.0),
    ("about 3.5 meters away", 3.5),
    ("right, behind, above; 3.5m", 3.5),                 # SpatialSoundQA form
    ("The 2 sources are 3.5 m apart", 3.5),              # a bare count beside a distance
    ("3.5m (350 cm)", 3.5),                              # the same distance twice
    ("It is 3.5m away, yes 3.5 m", 3.5),
])
def test_parse_distance_units(text: str, metres: float) -> None:
    assert parse_distance(text) == pytest.approx(metres, abs=1e-12)


@pytest.mark.parametrize("text", [
    "2 m or 5 m",                # two different distances: no single answer
    "between 3 and 4 m",         # a range
    "3-4 m", "3 to 4 metres", "3 or 4",
    "the dog 2m, the bell 5m",
    "ten metres",                # number words are not read
    "far away", "", "10 feet",   # no metre distance stated
])
def test_parse_distance_ambiguous_or_absent(text: str) -> None:
    assert parse_distance(text) is None


@pytest.mark.parametrize("pred,ok", [
    ("3.5m", True), ("4m", True), ("3m", True), ("4.5m", False), ("2.5m", False),
    ("350 cm", True), ("300 centimetres", True), ("4 metres", True), ("4 meters", True),
    ("2.99 m", False),                                   # tolerance 0.5 m, inclusive
    ("3.5", True),                                       # a bare number is metres
    ("35 cm", False),                                    # centimetres are not metres
    ("2 m or 3.5 m", False), ("between 3 and 4 m", False),
    ("The 2 sounds: 3.5 m", True),
    ("right, behind, above; 3.5m", True),
    ("no idea", False),
])
def test_de_answers(pred: str, ok: bool) -> None:
    assert answer_correct("DE", "DISTANCE", pred, "3.5m") is ok


@pytest.mark.parametrize("pred,ok", [
    ("2.5m", True), ("250 cm", True), ("2.5 metres", True), ("3 m", True),
    ("3.5m", False), ("1.5 meters", False), ("2m or 6m", False), ("2.5m, not 6m", False),
])
def test_distance_reasoning_answers(pred: str, ok: bool) -> None:
    assert answer_correct("Distance", "MIXUP_NONBINARY_DISTANCE", pred, "2.5m") is ok


# --------------------------------------------------------------------------- yes / no


@pytest.mark.parametrize("pred,truth,ok", [
    ("Yes", "Yes", True), ("yes.", "Yes", True), ("Yes, it is.", "Yes", True),
    ("YES!", "Yes", True), ("I think yes.", "Yes", True),
    ("Yes, the dog is to the left of the bell.", "Yes", True),
    ("No", "Yes", False), ("No, it is not.", "Yes", False),
    ("No, it is not.", "No", True), ("no", "No", True), ("No. The bell is closer.", "No", True),
    ("Yes and no", "Yes", False), ("yes or no", "No", False),   # both words: no answer
    ("Yes... no.", "No", False),
    ("I know", "No", False),                             # "no" inside a word is not "no"
    ("Not at all", "No", False),                         # only the words yes/no count
    ("eyes", "Yes", False), ("nobody knows", "No", False),
    ("", "Yes", False),
])
def test_yes_no_with_extra_words(pred: str, truth: str, ok: bool) -> None:
    for cat, qt in (("Direction", "MIXUP_DIRECTION"), ("Distance", "MIXUP_DISTANCE_BOTH")):
        assert answer_correct(cat, qt, pred, truth) is ok, (cat, pred)


# --------------------------------------------------------------------------- labels


@pytest.mark.parametrize("pred,truth,ok", [
    ("church bell", "church bell", True),
    ("The church bell.", "church bell", True),
    ("church-bell", "church bell", True),                # punctuation separates words
    ("Church_Bell", "church bell", True),
    ("'church bell'", "church bell", True),
    ("the sound of the church bell!", "church bell", True),
    ("dog (barking)", "dog (barking)", True),
    ("dog, barking", "dog (barking)", True),
    ("dog barking.", "dog (barking)", True),
    ("dog", "dog (barking)", False),                     # a different label
    ("rock'n'roll", "rock'n'roll", True),
    ("rock n roll", "rock'n'roll", True),
    ("rock'n'roll drums", "rock'n'roll", False),
    ("bell", "church bell", False),
    ("the church bell or the dog", "church bell", False),
    ("glass breaking", "glass-breaking", True),
    ("glassbreaking", "glass-breaking", False),
    ("C#", "C#", True),
    ("", "church bell", False),
])
def test_label_answers_with_punctuation(pred: str, truth: str, ok: bool) -> None:
    for cat, qt in (("Direction", "MIXUP_NONBINARY_DIRECTION"),
                    ("Distance", "MIXUP_NONBINARY_DISTANCE")):
        assert answer_correct(cat, qt, pred, truth) is ok, (cat, pred, truth)


def test_label_with_a_number_is_a_label() -> None:
    # a label holding a digit is still compared as a label (not as a distance)
    assert answer_correct("Direction", "MIXUP_NONBINARY_DIRECTION", "Bell 2", "bell 2")
    assert not answer_correct("Direction", "MIXUP_NONBINARY_DIRECTION", "bell 3", "bell 2")
