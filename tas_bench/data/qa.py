"""Spatial QA items (paper Appendix C) with answers computed from geometry, and answer scoring.

Question types (SpatialSoundQA names where they exist), their QA category and answer format:

========================== ========== ================================================ ===========
question_type              category   question (one of several phrasings)              answer
========================== ========== ================================================ ===========
DOA                        DOA        "In which direction is the dog?" (1 source)      "left, front, above"
DISTANCE                   DE         "How far away is the dog?" (1 source)            "3.5m"
MIXUP_SINGLE_DOA           DOA        same, one source of a two-source clip            "right, behind, below"
MIXUP_SINGLE_DISTANCE      DE         same, one source of a two-source clip            "2m"
MIXUP_DIRECTION            Direction  "Is the dog to the left of the bell?"            "Yes" | "No"
MIXUP_NONBINARY_DIRECTION  Direction  "Which sound is further to the left, the dog     a label
                                      or the bell?"
MIXUP_DISTANCE_BOTH        Distance   "Is the dog closer to the listener than the      "Yes" | "No"
                                      bell?"
MIXUP_NONBINARY_DISTANCE   Distance   "How far apart are the dog and the bell?"        "2.5m"
                                      "Which sound is closer to the listener, ...?"    a label
========================== ========== ================================================ ===========

DOA and distance of one source are separate items (the DOA words count for DOA, the distance for
DE). Which items a clip gets depends on its category: ``single_doa_de`` DOA + DISTANCE;
``double_doa_de`` MIXUP_SINGLE_DOA + MIXUP_SINGLE_DISTANCE per source; ``relative_direction``
one MIXUP_DIRECTION and one MIXUP_NONBINARY_DIRECTION item per axis (front/back, left/right,
above/below) on which the sources differ by at least
:data:`tas_bench.data.prompts.MIN_RELATION_GAP` metres; ``relative_distance`` the distance between
the sources, plus a yes/no and a which-is-closer item when their distances to the listener
differ by at least that gap. Relations use the same geometry as the prompts (x front, y left,
z up; see :mod:`tas_bench.data.prompts`).

Horizontal variant (datasets with ``direction_words: "horizontal"``; sources whose ``direction``
holds two words, see :func:`tas_bench.data.prompts.is_horizontal`): DOA answers are two words
("left, front"), ``relative_direction`` clips get items on the front/back and left/right axes only
(no above/below yes/no item and no "higher"/"lower" item), so no question or answer holds an
above/below word; every other item is as above.

Scoring (REFERENCE.md §6 Decision): DOA = the three direction words parsed from the prediction
equal the truth's (the two words of a horizontal truth); DE = |predicted - true distance| <= 0.5 m; Direction/Distance reasoning =
exact match of the normalised answer (Yes/No, a side word, a source name), a distance answer
within 0.5 m. The exact rules (one wrong direction word, several distances, units, extra words
around yes/no, punctuation in labels) are those of :func:`answer_correct`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tas_bench.data.geometry import format_distance, quantize_distance
from tas_bench.data.manifest import QAItem, Source
from tas_bench.data.prompts import (
    _G_PHRASES,
    MIN_RELATION_GAP,
    RELATION_WORDS,
    is_horizontal,
    pair_distance,
    relation_gap,
    relation_of,
)

#: question_type -> QA category.
QUESTION_TYPES: dict[str, str] = {
    "DOA": "DOA",
    "DISTANCE": "DE",
    "MIXUP_SINGLE_DOA": "DOA",
    "MIXUP_SINGLE_DISTANCE": "DE",
    "MIXUP_DIRECTION": "Direction",
    "MIXUP_NONBINARY_DIRECTION": "Direction",
    "MIXUP_DISTANCE_BOTH": "Distance",
    "MIXUP_NONBINARY_DISTANCE": "Distance",
}

#: Tolerance in metres for distance answers (DE and "how far apart").
DISTANCE_TOLERANCE = 0.5

_DOA_Q = (
    "In which direction is the {s}?",
    "Where is the sound of {s} coming from?",
    "From which direction does the {s} sound?",
)
_DIST_Q = (
    "How far away is the {s}?",
    "How far is the sound of {s} from the listener?",
    "At what distance is the {s}?",
)
_YESNO_Q = ("Is the {a} {rel} the {b}?", "Is the sound of {a} {rel} the sound of {b}?")
_WHICH_Q = ("Which sound is {side}, the {a} or the {b}?", "Of the {a} and the {b}, which is {side}?")
_APART_Q = (
    "How far apart are the {a} and the {b}?",
    "What is the distance between the sound of {a} and the sound of {b}?",
)
QUESTION_TEMPLATES: dict[str, tuple[str, ...]] = {
    "DOA": _DOA_Q,
    "DISTANCE": _DIST_Q,
    "MIXUP_SINGLE_DOA": _DOA_Q,
    "MIXUP_SINGLE_DISTANCE": _DIST_Q,
    "MIXUP_DIRECTION": _YESNO_Q,
    "MIXUP_NONBINARY_DIRECTION": _WHICH_Q,
    "MIXUP_DISTANCE_BOTH": _YESNO_Q,
    "MIXUP_NONBINARY_DISTANCE": _APART_Q + _WHICH_Q,
}

#: "Which sound is <side>" phrases -> (relation type D/E/F/G, True if the larger value wins).
#: For G the larger value is the distance, so "farther" wins on larger.
SIDE_PHRASES: dict[str, tuple[str, bool]] = {
    "further to the front": ("D", True),
    "further back": ("D", False),
    "further to the left": ("E", True),
    "further to the right": ("E", False),
    "higher": ("F", True),
    "lower": ("F", False),
    "closer to the listener": ("G", False),
    "farther from the listener": ("G", True),
}
_SIDES_FOR = {t: [p for p, (tt, _) in SIDE_PHRASES.items() if tt == t] for t in "DEFG"}
_REL_TO_TYPE = {w: t for t, ws in RELATION_WORDS.items() for w in ws}
_G_TO_REL = {p: k for k, ps in _G_PHRASES.items() for p in ps}


def _label(s: Source) -> str:
    return s.label.strip()


def _norm_label(text: str) -> str:
    # the scoring's label comparison: two labels it cannot tell apart count as the same
    return label_key(text)


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _item(qtype: str, question: str, answer: str) -> QAItem:
    return QAItem(question=question, answer=answer, category=QUESTION_TYPES[qtype],
                  question_type=qtype)


def _perception(qdoa: str, qdist: str, s: Source, rng: np.random.Generator) -> list[QAItem]:
    return [
        _item(qdoa, _pick(rng, _DOA_Q).format(s=_label(s)), ", ".join(s.direction)),
        _item(qdist, _pick(rng, _DIST_Q).format(s=_label(s)), format_distance(s.distance)),
    ]


def _winner(rtype: str, larger: bool, sources: Sequence[Source]) -> int:
    """Index of the source with the larger (or smaller) value on the relation's axis."""
    if rtype == "G":
        first_larger = relation_of("G", sources[0], sources[1]) == "farther"
    else:
        first_larger = relation_of(rtype, sources[0], sources[1]) == RELATION_WORDS[rtype][0]
    return 0 if first_larger == larger else 1


def _yes_no(rtype: str, sources: Sequence[Source], rng: np.random.Generator) -> QAItem:
    order = (0, 1) if rng.integers(2) == 0 else (1, 0)
    subj, obj = sources[order[0]], sources[order[1]]
    if rtype == "G":
        asked_rel = ("closer", "farther")[int(rng.integers(2))]
        rel_text = _pick(rng, _G_PHRASES[asked_rel])
        qtype = "MIXUP_DISTANCE_BOTH"
    else:
        asked_rel = rel_text = _pick(rng, RELATION_WORDS[rtype])
        qtype = "MIXUP_DIRECTION"
    truth = relation_of(rtype, subj, obj)
    q = _pick(rng, _YESNO_Q).format(a=_label(subj), rel=rel_text, b=_label(obj))
    return _item(qtype, q, "Yes" if asked_rel == truth else "No")


def _which(rtype: str, sources: Sequence[Source], rng: np.random.Generator) -> QAItem:
    side = _pick(rng, _SIDES_FOR[rtype])
    order = (0, 1) if rng.integers(2) == 0 else (1, 0)
    q = _pick(rng, _WHICH_Q).format(side=side, a=_label(sources[order[0]]),
                                    b=_label(sources[order[1]]))
    win = _winner(rtype, SIDE_PHRASES[side][1], sources)
    qtype = "MIXUP_NONBINARY_DISTANCE" if rtype == "G" else "MIXUP_NONBINARY_DIRECTION"
    return _item(qtype, q, _label(sources[win]))


def make_qa(category: str, sources: Sequence[Source], rng: np.random.Generator) -> list[QAItem]:
    """QA items for a clip of ``category`` with ``sources``; answers computed from geometry.

    See the module docstring for which items each category gets. ``real`` clips get none.
    Raises ``ValueError`` for a wrong source count, two sources with the same label, or a
    ``relative_direction`` pair that differs by less than ``MIN_RELATION_GAP`` on every axis.
    Sources of the horizontal variant (two direction words each) get no above/below item.
    """
    if category == "real":
        return []
    need = {"single_doa_de": 1, "double_doa_de": 2, "relative_direction": 2,
            "relative_distance": 2}
    if category not in need:
        raise ValueError(f"unknown clip category {category!r}")
    if len(sources) != need[category]:
        raise ValueError(f"category {category} needs {need[category]} source(s), "
                         f"got {len(sources)}")
    if len(sources) == 2 and _norm_label(sources[0].label) == _norm_label(sources[1].label):
        raise ValueError(f"both sources are labelled {sources[0].label!r}; questions about two "
                         "sources need distinct labels")
    if category == "single_doa_de":
        return _perception("DOA", "DISTANCE", sources[0], rng)
    if category == "double_doa_de":
        return [it for s in sources
                for it in _perception("MIXUP_SINGLE_DOA", "MIXUP_SINGLE_DISTANCE", s, rng)]
    items: list[QAItem] = []
    if category == "relative_direction":
        for rtype in ("D", "E") if is_horizontal(sources) else ("D", "E", "F"):
            if relation_gap(rtype, sources) >= MIN_RELATION_GAP:
                items += [_yes_no(rtype, sources, rng), _which(rtype, sources, rng)]
        if not items:
            raise ValueError(f"sources differ by less than {MIN_RELATION_GAP} m on every axis; "
                             "no unambiguous direction question")
        return items
    order = (0, 1) if rng.integers(2) == 0 else (1, 0)
    q = _pick(rng, _APART_Q).format(a=_label(sources[order[0]]), b=_label(sources[order[1]]))
    items.append(_item("MIXUP_NONBINARY_DISTANCE", q,
                       format_distance(pair_distance(sources[0], sources[1]))))
    if relation_gap("G", sources) >= MIN_RELATION_GAP:
        items += [_yes_no("G", sources, rng), _which("G", sources, rng)]
    return items


# --------------------------------------------------------------------------- checking


def _regex(template: str) -> re.Pattern[str]:
    rel_alts = sorted(list(_REL_TO_TYPE) + list(_G_TO_REL), key=len, reverse=True)
    groups = {
        "s": r"(?P<s>.+?)", "a": r"(?P<a>.+?)", "b": r"(?P<b>.+?)",
        "rel": "(?P<rel>" + "|".join(re.escape(r) for r in rel_alts) + ")",
        "side": "(?P<side>" + "|".join(re.escape(s) for s in SIDE_PHRASES) + ")",
    }
    parts = re.split(r"(\{[a-z]+\})", template)
    return re.compile("".join(groups[p[1:-1]] if p.startswith("{") else re.escape(p)
                              for p in parts), re.IGNORECASE)


_Q_REGEXES = {t: [_regex(x) for x in tpls] for t, tpls in QUESTION_TEMPLATES.items()}


def _find(label: str, sources: Sequence[Source]) -> int | None:
    hits = [i for i, s in enumerate(sources) if _norm_label(s.label) == _norm_label(label)]
    return hits[0] if len(hits) == 1 else None


def _asked_relation(qtype: str, rel: str) -> tuple[str, str] | None:
    """(relation type, asked relation) of a yes/no question's relation phrase ``rel`` (lower
    case): the phrase itself for D/E/F, "closer"/"farther" for G; None if the phrase does not
    belong to ``qtype``."""
    if qtype == "MIXUP_DIRECTION" and rel in _REL_TO_TYPE:
        return _REL_TO_TYPE[rel], rel
    if qtype == "MIXUP_DISTANCE_BOTH" and rel in _G_TO_REL:
        return "G", _G_TO_REL[rel]
    return None


def _expected(qtype: str, fields: dict[str, str], sources: Sequence[Source]) -> str | list[str]:
    """The answer the geometry gives to one reading of a question, or a list of problems."""
    if "s" in fields:
        i = _find(fields["s"], sources)
        if i is None:
            return [f"question names {fields['s']!r}, which is not exactly one source's label"]
        s = sources[i]
        return ", ".join(s.direction) if QUESTION_TYPES[qtype] == "DOA" else format_distance(s.distance)
    ia, ib = _find(fields["a"], sources), _find(fields["b"], sources)
    if ia is None or ib is None or ia == ib:
        return [f"question names {fields['a']!r} and {fields['b']!r}, expected the two "
                "sources' labels"]
    if "rel" in fields:
        rel = fields["rel"].lower()
        reading = _asked_relation(qtype, rel)
        if reading is None:
            return [f"relation {rel!r} does not belong to a {qtype} question"]
        rtype, asked = reading
        if rtype == "F" and is_horizontal(sources):
            return [f"relation {rel!r} is an above/below question about sources of the "
                    "horizontal variant (two direction words)"]
        if relation_gap(rtype, sources) < MIN_RELATION_GAP:
            return [f"relation {rel!r} is ambiguous (gap < {MIN_RELATION_GAP} m)"]
        return "Yes" if relation_of(rtype, sources[ia], sources[ib]) == asked else "No"
    if "side" in fields:
        rtype, larger = SIDE_PHRASES[fields["side"].lower()]
        if (rtype == "G") != (qtype == "MIXUP_NONBINARY_DISTANCE"):
            return [f"{fields['side']!r} does not belong to a {qtype} question"]
        if rtype == "F" and is_horizontal(sources):
            return [f"{fields['side']!r} is an above/below question about sources of the "
                    "horizontal variant (two direction words)"]
        if relation_gap(rtype, sources) < MIN_RELATION_GAP:
            return [f"{fields['side']!r} is ambiguous (gap < {MIN_RELATION_GAP} m)"]
        return _label(sources[_winner(rtype, larger, sources)])
    return format_distance(pair_distance(sources[ia], sources[ib]))


@dataclass(frozen=True)
class RelationReading:
    """One reading of a relational question: it compares ``a`` with ``b`` (labels as the
    question spells them) on axis ``rtype`` (D front/back, E left/right, F above/below, G
    distance to the listener) and asks for the ``larger`` value (further front, left, higher,
    farther) or the smaller; ``form`` "yes_no" ("Is a <rel> b?") or "which" ("Which sound is
    <side>, a or b?")."""

    a: str
    b: str
    rtype: str
    larger: bool
    form: str

    def answer(self, a_larger: bool) -> str:
        """The answer if ``a``'s value on the axis is the larger one: "Yes"/"No" or a label."""
        if self.form == "yes_no":
            return "Yes" if a_larger == self.larger else "No"
        return self.a if a_larger == self.larger else self.b


def relation_readings(question_type: str, question: str) -> list[RelationReading]:
    """Every reading of a relational question (a label such as "sound of dog" can make a
    phrasing match twice: "the sound of dog" or "the dog"); empty for a question without a
    relation word (DOA, distances, "how far apart") or one no phrasing matches."""
    text = " ".join(question.split())
    out = []
    for rx in _Q_REGEXES.get(question_type, []):
        m = rx.fullmatch(text)
        if m is None:
            continue
        f = m.groupdict()
        if f.get("rel"):
            reading = _asked_relation(question_type, f["rel"].lower())
            if reading is not None:
                rtype, asked = reading
                larger = asked == ("farther" if rtype == "G" else RELATION_WORDS[rtype][0])
                out.append(RelationReading(f["a"], f["b"], rtype, larger, "yes_no"))
        elif f.get("side"):
            rtype, larger = SIDE_PHRASES[f["side"].lower()]
            out.append(RelationReading(f["a"], f["b"], rtype, larger, "which"))
    return out


def asks_larger(question_type: str, question: str) -> bool | None:
    """Whether a relational question asks for the larger value on its axis (further front,
    left, higher, farther from the listener: "Is the dog to the left of the bell?", "Which
    sound is higher, ...?") - True - or the smaller one - False; None for a question without
    a relation word (DOA, distances, "how far apart") or one no phrasing matches.

    The answer of a relational item is its geometry's comparison flipped by this word; a
    language model trained from scratch learns the comparison on the True items alone far
    sooner than on all of them (the flip makes every single cue uninformative), which is what
    the assessor's QA curriculum (``qa_curriculum``) uses."""
    readings = relation_readings(question_type, question)
    return readings[0].larger if readings else None


def check_qa(item: QAItem, sources: Sequence[Source]) -> list[str]:
    """Problems with ``item`` (empty = consistent): re-reads the question and recomputes the
    answer from ``sources``. Also checks that the category matches the question type."""
    qtype = item.question_type
    if qtype not in QUESTION_TYPES:
        return [f"unknown question_type {qtype!r}"]
    problems = []
    if item.category != QUESTION_TYPES[qtype]:
        problems.append(f"category {item.category!r} should be {QUESTION_TYPES[qtype]!r} for "
                        f"{qtype}")
    text = " ".join(item.question.split())
    readings = [m.groupdict() for rx in _Q_REGEXES[qtype] if (m := rx.fullmatch(text))]
    if not readings:
        return problems + [f"question {item.question!r} matches no {qtype} phrasing"]
    best: list[str] | None = None
    for fields in readings:
        exp = _expected(qtype, {k: v for k, v in fields.items() if v is not None}, sources)
        found = exp if isinstance(exp, list) else (
            [] if item.answer == exp else
            [f"answer {item.answer!r} to {item.question!r}; geometry says {exp!r}"])
        if best is None or len(found) < len(best):
            best = found
    return problems + (best or [])


# --------------------------------------------------------------------------- scoring

#: Length units read in distance answers -> metres per unit (whole words, any case; the
#: number may be followed by a space or a hyphen: "3.5m", "3.5 m", "3.5-metre").
LENGTH_UNITS: dict[str, float] = {
    **dict.fromkeys(("mm", "millimeter", "millimeters", "millimetre", "millimetres"), 1e-3),
    **dict.fromkeys(("cm", "centimeter", "centimeters", "centimetre", "centimetres"), 1e-2),
    **dict.fromkeys(("m", "meter", "meters", "metre", "metres"), 1.0),
    **dict.fromkeys(("km", "kilometer", "kilometers", "kilometre", "kilometres"), 1e3),
}
#: Units that state a length not in metric units: a number carrying one is not a distance
#: answer (it is neither converted nor read as bare metres).
_FOREIGN_UNITS = ("ft", "feet", "foot", "inch", "inches", "yard", "yards", "mile", "miles")
_NUMBER = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?|\.\d+)(?:[\s-]*([a-z]+))?(?![\w])", re.IGNORECASE)
#: Words (or dashes) joining a bare number to a following number with a unit: "3 to 4 m".
_RANGE_JOIN = re.compile(r"\s*(?:-|–|—|to|or|and|/)\s*$", re.IGNORECASE)
_AXIS_WORDS = (
    {"left": "left", "right": "right"},
    {"front": "front", "behind": "behind", "back": "behind"},
    {"above": "above", "below": "below"},
)


def normalize_answer(text: str) -> str:
    """Canonical form of an answer for exact matching.

    Lower case, single spaces, units written "m" ("3.50 meters" -> "3.5m"), surrounding
    punctuation and quotes removed, a leading "the"/"a"/"an" and "sound of (the)" removed.
    """
    t = " ".join(str(text).lower().split())
    t = t.strip(" \t\"'`.!?;:")

    def unit(m: re.Match[str]) -> str:
        return f"{float(m.group(1)):g}m"

    t = re.sub(r"(\d+(?:\.\d+)?)\s*(?:meters|metres|meter|metre|m)\b", unit, t)
    t = re.sub(r"^(?:the|a|an)\s+", "", t)
    t = re.sub(r"^sound of\s+(?:the\s+|a\s+|an\s+)?", "", t)
    return t.strip(" \t\"'`.!?;:")


def label_key(text: str) -> str:
    """A label answer reduced to its words, for exact matching of source labels.

    Lower case; every character that is not a letter or a digit (hyphens, underscores,
    apostrophes, commas, brackets, quotes, final stops) separates words; a leading
    "the"/"a"/"an" and "sound of (the)" are dropped. "The church-bell." -> "church bell",
    "dog (barking)" -> "dog barking", "rock'n'roll" -> "rock n roll".
    """
    words = re.findall(r"[^\W_]+", str(text).lower())
    if words[:1] in (["the"], ["a"], ["an"]):
        words = words[1:]
    if words[:2] == ["sound", "of"]:
        words = words[2:]
        if words[:1] in (["the"], ["a"], ["an"]):
            words = words[1:]
    return " ".join(words)


def parse_direction(text: str, *, vertical: bool = True) -> tuple[str, ...] | None:
    """The (lateral, frontal, vertical) words stated in free text, or None if an axis is
    missing or stated both ways ("left ... right", "above or below"). Words are whole words in
    any order and case; "back" counts as "behind"; every other word is ignored (negations are
    not understood: "not left" states "left").

    With ``vertical=False`` (the horizontal variant) only (lateral, frontal) are read and
    above/below words are ignored."""
    words = re.findall(r"[a-z]+", text.lower())
    out = []
    for axis in _AXIS_WORDS if vertical else _AXIS_WORDS[:2]:
        found = {axis[w] for w in words if w in axis}
        if len(found) != 1:
            return None
        out.append(found.pop())
    return tuple(out)


def states_vertical(text: str) -> bool:
    """Whether free text holds an above/below word (whole word, any case)."""
    return bool(set(re.findall(r"[a-z]+", text.lower())) & set(_AXIS_WORDS[2]))


def _to_metres(value: float, unit: str) -> float:
    f = LENGTH_UNITS[unit]
    return value * f if f >= 1.0 else value / round(1.0 / f)  # 350 cm -> exactly 3.5


def parse_distance(text: str) -> float | None:
    """The one distance in metres stated in free text ("3.5m", "3.5 meters", "350 cm"), or None.

    Numbers are decimal digits ("3.5", ".5"; no number words, no decimal comma). A number
    followed by a unit of :data:`LENGTH_UNITS` (mm, cm, m, km and their spelled forms, British
    or American) is converted to metres; a number with a non-metric length unit (feet,
    inches...) is not a distance answer. A bare number joined to a following number with a
    unit by "to", "or", "and", "/" or a dash ("3 to 4 m", "3-4 m") takes that unit.
    If any number carries a metric unit, bare numbers are ignored ("the 2 sounds are 3.5 m
    apart" -> 3.5); otherwise bare numbers are read as metres. The answer must state one
    distance: when the numbers read that way do not all agree (within 1e-9 m) — "2 m or 5 m",
    "between 3 and 4 m", "3 or 4" — the result is None. The same value written twice
    ("3.5m (350 cm)") is one distance.
    """
    found: list[tuple[float, str | None, int, int]] = []
    for m in _NUMBER.finditer(text):
        word = (m.group(2) or "").lower()
        if word in _FOREIGN_UNITS:
            return None
        unit = word if word in LENGTH_UNITS else None
        # a non-unit word after the number ("2 sources") leaves the number bare
        end = m.end(2) if unit else m.end(1)
        found.append((float(m.group(1)), unit, m.start(1), end))
    units: list[str | None] = [u for _, u, _, _ in found]
    for i in range(len(found) - 2, -1, -1):
        if units[i] is None and units[i + 1] is not None and \
                _RANGE_JOIN.fullmatch(text[found[i][3]:found[i + 1][2]]):
            units[i] = units[i + 1]
    with_unit = [_to_metres(v, u) for (v, *_), u in zip(found, units) if u is not None]
    values = with_unit or [v for (v, *_), u in zip(found, units) if u is None]
    if not values or max(values) - min(values) > 1e-9:
        return None
    return values[0]


def _yes_no_word(text: str) -> str | None:
    """"yes" or "no" when exactly one of the two words occurs in ``text``, else None."""
    words = set(re.findall(r"[a-z]+", text.lower())) & {"yes", "no"}
    return words.pop() if len(words) == 1 else None


def answer_correct(item_category: str, question_type: str, predicted: str, truth: str) -> bool:
    """Whether ``predicted`` answers correctly a question whose true answer is ``truth``.

    * DOA: the three direction words (left/right, front/behind, above/below) parsed by
      :func:`parse_direction` from both must all agree; each word matters on its own (one
      wrong, missing or doubly stated axis makes the answer wrong). Order, case, free text
      around them and a stated distance are ignored. A truth of the horizontal variant holds
      no above/below word ("left, front"): then the lateral and frontal words must agree and
      whatever the prediction says about above/below is not scored (the truth states nothing
      about it), so "left, front" and "left, front, above" are both right.
    * DE: the distances parsed by :func:`parse_distance` (units mm/cm/m/km, spelled either
      way; an answer stating several different distances, a range or no metric distance
      counts as no answer) differ by at most :data:`DISTANCE_TOLERANCE` m (inclusive).
    * Direction / Distance, truth "Yes"/"No": exactly one of the whole words "yes" and "no"
      occurs in the prediction (any case, any position, other words allowed) and it is the
      truth's. "Yes, it is." is yes; "yes and no", "I know" (no word "no") and "not at all"
      are no answer.
    * Direction / Distance, truth a distance ("2.5m"): as DE.
    * Otherwise (a source label or a side word): the prediction's words equal the truth's
      after :func:`label_key` (case, punctuation and a leading "the" / "sound of the"
      ignored; nothing else may be added or left out).

    ``question_type`` is accepted for the record; the answer form is taken from ``truth``.
    Raises ``ValueError`` for an unknown ``item_category``.
    """
    if item_category == "DOA":
        if not states_vertical(truth):  # the horizontal variant's two words
            t = parse_direction(truth, vertical=False)
            return t is not None and parse_direction(predicted, vertical=False) == t
        p, t = parse_direction(predicted), parse_direction(truth)
        return p is not None and p == t
    if item_category == "DE":
        p, t = parse_distance(predicted), parse_distance(truth)
        return p is not None and t is not None and abs(p - t) <= DISTANCE_TOLERANCE + 1e-9
    if item_category not in ("Direction", "Distance"):
        raise ValueError(f"unknown QA category {item_category!r}")
    nt = normalize_answer(truth)
    if nt in ("yes", "no"):
        return _yes_no_word(predicted) == nt
    if re.fullmatch(r"\d+(?:\.\d+)?m", nt):
        p, t = parse_distance(predicted), parse_distance(nt)
        return p is not None and t is not None and abs(p - t) <= DISTANCE_TOLERANCE + 1e-9
    key = label_key(truth)
    return bool(key) and label_key(predicted) == key


def distance_of_answer(answer: str) -> float:
    """Distance in metres on the 0.5 m grid stated by an answer like "3.5m" (ValueError if none)."""
    d = parse_distance(answer)
    if d is None or not math.isfinite(d):
        raise ValueError(f"no distance in answer {answer!r}")
    return quantize_distance(d)
