"""Text prompts of the paper's Table 1 (types A-G), generated from and checked against geometry.

===== ====================================== ===============================================
type  states                                 example
===== ====================================== ===============================================
A     one source: direction words + distance "The dog is located right, behind, below, 5m away."
B     two sources: direction + distance each "The dog is located ..., and the bell is ..."
C     Euclidean distance between two sources "The distance between the sound of dog and the
                                             sound of bell is 3m away."
D     front/back relation of two sources     "The dog is in front of the bell."
E     left/right relation                    "The dog is to the left of the bell."
F     above/below relation                   "The dog is above the bell."
G     which source is closer to the listener "The dog is closer to the listener than the bell."
===== ====================================== ===============================================

Geometry (see :mod:`tas_bench.data.geometry`): positions are SOFA Cartesian metres, x front, y left,
z up, listener at the origin. Relations compare one coordinate of the two sources: D uses x
("in front of" = larger x), E uses y ("to the left of" = larger y), F uses z ("above" = larger
z), G the distance to the listener ("closer" = smaller distance). A relation is only stated when
the two values differ by at least :data:`MIN_RELATION_GAP` metres, so it is unambiguous;
:func:`make_prompt` refuses (``ValueError``) source pairs closer than that on the relevant axis,
and two-source prompts whose sources share a label. Distances are written on the 0.5 m grid
(:func:`tas_bench.data.geometry.format_distance`), direction words in the order lateral, frontal,
vertical, comma-separated, as in the paper.

Every phrasing is a template; :func:`check_prompt` parses a prompt back with the templates of its
type and compares every stated fact (labels, direction words, distances, relation) with the
geometry.

Horizontal variant (datasets with ``direction_words: "horizontal"``, made with heads whose
directions do not cover the octants, see :func:`tas_bench.data.hrtf.placement_directions`):
the sources' ``direction`` holds two words (lateral, frontal), so A and B state two words
("The dog is located right, behind, 5m away."); C, D, E and G are unchanged (C states the
Euclidean distance between the two positions, which carry whatever small elevation the
measured directions have); F, the above/below relation, does not exist: ``relative_direction``
clips draw D or E with equal probability (:func:`prompt_types_for`, each 1/2 of that category
instead of 1/3), and :func:`make_prompt` / :func:`check_prompt` refuse type F for such sources.
No prompt of the variant contains an above/below word.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from tas_bench.data.geometry import (
    HORIZONTAL,
    OCTANTS,
    format_distance,
    quantize_distance,
    to_cartesian,
)
from tas_bench.data.manifest import Source

#: Prompt types each simulated clip category may use (paper Table 1).
PROMPT_TYPES_FOR_CATEGORY: dict[str, tuple[str, ...]] = {
    "single_doa_de": ("A",),
    "double_doa_de": ("B",),
    "relative_direction": ("D", "E", "F"),
    "relative_distance": ("C", "G"),
}

#: The variant of :data:`PROMPT_TYPES_FOR_CATEGORY` for horizontal datasets (no type F).
PROMPT_TYPES_FOR_CATEGORY_HORIZONTAL: dict[str, tuple[str, ...]] = {
    **PROMPT_TYPES_FOR_CATEGORY, "relative_direction": ("D", "E"),
}


def prompt_types_for(category: str, direction_set: str = OCTANTS) -> tuple[str, ...]:
    """Prompt types a simulated clip of ``category`` may use in a dataset of ``direction_set``
    (:data:`~tas_bench.data.geometry.OCTANTS` or ``HORIZONTAL``, which has no type F)."""
    if direction_set == HORIZONTAL:
        return PROMPT_TYPES_FOR_CATEGORY_HORIZONTAL[category]
    if direction_set != OCTANTS:
        raise ValueError(f"unknown direction set {direction_set!r}")
    return PROMPT_TYPES_FOR_CATEGORY[category]


def is_horizontal(sources: Sequence[Source]) -> bool:
    """Whether ``sources`` are described with the horizontal variant's two direction words
    (every source's ``direction`` is [lateral, frontal]; at least one source)."""
    return bool(sources) and all(len(s.direction) == 2 for s in sources)


#: Smallest difference (metres) on the compared axis for a relation (D, E, F, G) to be stated.
MIN_RELATION_GAP = 0.5

#: Relation words of D, E, F: (word for the larger coordinate, word for the smaller one).
RELATION_WORDS: dict[str, tuple[str, str]] = {
    "D": ("in front of", "behind"),
    "E": ("to the left of", "to the right of"),
    "F": ("above", "below"),
}
#: Comparison phrases of G: canonical relation ("closer"/"farther") -> phrasings.
_G_PHRASES: dict[str, tuple[str, ...]] = {
    "closer": ("closer to the listener than", "nearer to the listener than"),
    "farther": ("farther from the listener than", "further away from the listener than"),
}

_N_SOURCES = {"A": 1, "B": 2, "C": 2, "D": 2, "E": 2, "F": 2, "G": 2}

# Placeholders: {s0} {s1} labels, {dir0} {dir1} direction words, {d0} {d1} distances,
# {dist} the distance between the two sources, {a} {b} the labels of the relation's subject
# and object, {rel} the relation phrase.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "A": (
        "The {s0} is located {dir0}, {d0} away.",
        "The sound of {s0} is located {dir0}, {d0} away.",
        "The {s0} sounds from {dir0}, {d0} away.",
        "The {s0} is {d0} away from the listener, {dir0}.",
        "Place the {s0} {dir0}, at a distance of {d0}.",
        "The {s0} can be heard {dir0}, about {d0} away.",
    ),
    "B": (
        "The {s0} is located {dir0}, {d0} away, and the {s1} is located {dir1}, {d1} away.",
        "The sound of {s0} is {dir0}, {d0} away; the sound of {s1} is {dir1}, {d1} away.",
        "Place the {s0} {dir0}, at a distance of {d0}, and the {s1} {dir1}, at a distance of {d1}.",
        "The {s1} is located {dir1}, {d1} away, while the {s0} is located {dir0}, {d0} away.",
    ),
    "C": (
        "The distance between the sound of {s0} and the sound of {s1} is {dist} away.",
        "The {s0} and the {s1} are {dist} apart.",
        "The {s1} is {dist} away from the {s0}.",
        "There is {dist} between the {s0} and the {s1}.",
    ),
    "D": (
        "The {a} is {rel} the {b}.",
        "The sound of {a} is {rel} the sound of {b}.",
        "The {a} can be heard {rel} the {b}.",
        "Place the {a} {rel} the {b}.",
    ),
    "G": (
        "The {a} is {rel} the {b}.",
        "The sound of {a} is {rel} the sound of {b}.",
        "The {a} can be heard {rel} the {b}.",
    ),
}
TEMPLATES["E"] = TEMPLATES["D"]
TEMPLATES["F"] = TEMPLATES["D"]

# two words (horizontal variant) or three; which one a clip needs is its sources' business
_DIR_RE = r"(?:left|right), (?:front|behind)(?:, (?:above|below))?"
_NUM_RE = r"\d+(?:\.\d+)?m"


def _check_type(prompt_type: str, sources: Sequence[Source]) -> None:
    if prompt_type not in _N_SOURCES:
        raise ValueError(f"unknown prompt type {prompt_type!r} (expected one of A..G)")
    need = _N_SOURCES[prompt_type]
    if len(sources) != need:
        raise ValueError(f"prompt type {prompt_type} needs {need} source(s), got {len(sources)}")


_NO_F = ("prompt type F (above/below) does not exist for sources described with the "
         "horizontal variant's two direction words")


def position(source: Source) -> np.ndarray:
    """Cartesian position of a source in metres (x front, y left, z up)."""
    return to_cartesian(source.azimuth, source.elevation, source.distance)


def _axis_value(prompt_type: str, source: Source) -> float:
    if prompt_type == "G":
        return float(source.distance)
    axis = {"D": 0, "E": 1, "F": 2}[prompt_type]
    return float(position(source)[axis])


def pair_distance(a: Source, b: Source) -> float:
    """Euclidean distance in metres between two source positions (unrounded)."""
    return float(np.linalg.norm(position(a) - position(b)))


def relation_gap(prompt_type: str, sources: Sequence[Source]) -> float:
    """How clearly a two-source relation holds, in metres.

    D/E/F: absolute difference of the x/y/z coordinates; G: difference of the distances to the
    listener; C: the distance between the sources; A/B: ``inf`` (no relation).
    """
    _check_type(prompt_type, sources)
    if prompt_type in ("A", "B"):
        return math.inf
    if prompt_type == "C":
        return pair_distance(sources[0], sources[1])
    return abs(_axis_value(prompt_type, sources[0]) - _axis_value(prompt_type, sources[1]))


def relation_of(prompt_type: str, subject: Source, obj: Source) -> str:
    """The relation word(s) true of ``subject`` relative to ``obj``.

    D/E/F: one of :data:`RELATION_WORDS` (e.g. "to the left of"); G: "closer" or "farther".
    Ties resolve to the first word; callers keep pairs :data:`MIN_RELATION_GAP` apart.
    """
    if prompt_type == "G":
        return "closer" if subject.distance <= obj.distance else "farther"
    larger, smaller = RELATION_WORDS[prompt_type]
    return larger if _axis_value(prompt_type, subject) >= _axis_value(prompt_type, obj) else smaller


def _dir_text(source: Source) -> str:
    return ", ".join(source.direction)


def prompt_facts(prompt_type: str, sources: Sequence[Source]) -> dict[str, Any]:
    """The ground-truth facts a prompt of ``prompt_type`` states about ``sources``.

    A/B: ``{"sources": [{"label", "direction": [3 words, or 2 in the horizontal variant],
    "distance": m on the 0.5 m grid}]}``;
    C: ``{"labels": [l0, l1], "distance": m on the grid}``;
    D/E/F/G: ``{"labels": [l0, l1], "relation": word}`` meaning source 0 is <relation> source 1
    (D/E/F the :data:`RELATION_WORDS`, G "closer"/"farther"), plus ``"gap"`` in metres.
    """
    _check_type(prompt_type, sources)
    facts: dict[str, Any] = {"type": prompt_type}
    if prompt_type in ("A", "B"):
        facts["sources"] = [
            {"label": s.label, "direction": list(s.direction),
             "distance": quantize_distance(s.distance)}
            for s in sources
        ]
        return facts
    facts["labels"] = [sources[0].label, sources[1].label]
    if prompt_type == "C":
        facts["distance"] = quantize_distance(pair_distance(sources[0], sources[1]))
    else:
        facts["relation"] = relation_of(prompt_type, sources[0], sources[1])
        facts["gap"] = relation_gap(prompt_type, sources)
    return facts


def _require_unambiguous(prompt_type: str, sources: Sequence[Source]) -> None:
    if len(sources) == 2 and _norm_label(sources[0].label) == _norm_label(sources[1].label):
        raise ValueError(f"prompt type {prompt_type}: both sources are labelled "
                         f"{sources[0].label!r}; two-source prompts need distinct labels")
    if prompt_type in ("D", "E", "F", "G"):
        gap = relation_gap(prompt_type, sources)
        if gap < MIN_RELATION_GAP:
            raise ValueError(f"prompt type {prompt_type}: sources differ by {gap:.3f} m on the "
                             f"compared axis (< {MIN_RELATION_GAP} m); the relation is ambiguous")


def make_prompt(prompt_type: str, sources: Sequence[Source], rng: np.random.Generator) -> str:
    """A prompt of ``prompt_type`` (A-G) describing ``sources``; phrasing drawn from ``rng``.

    Deterministic given the generator state. Raises ``ValueError`` for a wrong number of
    sources, two sources with the same label, a relation (D-G) weaker than
    :data:`MIN_RELATION_GAP` metres (see :func:`relation_gap`), or type F for sources of the
    horizontal variant (:func:`is_horizontal`).
    """
    _check_type(prompt_type, sources)
    if prompt_type == "F" and is_horizontal(sources):
        raise ValueError(_NO_F)
    _require_unambiguous(prompt_type, sources)
    templates = TEMPLATES[prompt_type]
    template = templates[int(rng.integers(len(templates)))]
    values: dict[str, str] = {}
    for i, s in enumerate(sources):
        values[f"s{i}"] = s.label.strip()
        values[f"dir{i}"] = _dir_text(s)
        values[f"d{i}"] = format_distance(s.distance)
    if prompt_type == "C":
        values["dist"] = format_distance(pair_distance(sources[0], sources[1]))
    elif prompt_type in ("D", "E", "F", "G"):
        order = (0, 1) if rng.integers(2) == 0 else (1, 0)
        subj, obj = sources[order[0]], sources[order[1]]
        rel = relation_of(prompt_type, subj, obj)
        if prompt_type == "G":
            phrases = _G_PHRASES[rel]
            rel = phrases[int(rng.integers(len(phrases)))]
        values["a"], values["b"], values["rel"] = subj.label.strip(), obj.label.strip(), rel
    text = template.format(**values)
    return text[:1].upper() + text[1:]


# --------------------------------------------------------------------------- parsing


def _template_regex(template: str, prompt_type: str) -> re.Pattern[str]:
    if prompt_type == "G":
        rel_alts = "|".join(re.escape(p) for ps in _G_PHRASES.values() for p in ps)
    elif prompt_type in RELATION_WORDS:
        rel_alts = "|".join(re.escape(w) for w in RELATION_WORDS[prompt_type])
    else:
        rel_alts = "(?!)"
    groups = {
        "s0": r"(?P<s0>.+?)", "s1": r"(?P<s1>.+?)", "a": r"(?P<a>.+?)", "b": r"(?P<b>.+?)",
        "dir0": f"(?P<dir0>{_DIR_RE})", "dir1": f"(?P<dir1>{_DIR_RE})",
        "d0": f"(?P<d0>{_NUM_RE})", "d1": f"(?P<d1>{_NUM_RE})", "dist": f"(?P<dist>{_NUM_RE})",
        "rel": f"(?P<rel>{rel_alts})",
    }
    out = []
    for part in re.split(r"(\{[a-z0-9]+\})", template):
        if part.startswith("{") and part.endswith("}"):
            out.append(groups[part[1:-1]])
        else:
            out.append(re.escape(part))
    return re.compile("".join(out), re.IGNORECASE)


_REGEXES: dict[str, list[re.Pattern[str]]] = {
    t: [_template_regex(tpl, t) for tpl in tpls] for t, tpls in TEMPLATES.items()
}


def parse_prompt(prompt: str, prompt_type: str) -> list[dict[str, str]]:
    """Every reading of ``prompt`` with the templates of ``prompt_type`` (empty: no match).

    Each reading maps the template placeholders (``s0``, ``dir0``, ``d0``, ``dist``, ``a``,
    ``b``, ``rel``...) to the text found there. Several templates can match one text (a label
    may itself start with "sound of"), hence a list.
    """
    text = " ".join(prompt.split())
    out = []
    for rx in _REGEXES.get(prompt_type, []):
        m = rx.fullmatch(text)
        if m:
            out.append({k: v for k, v in m.groupdict().items() if v is not None})
    return out


def _norm_label(label: str) -> str:
    return " ".join(label.lower().split())


def _parse_m(text: str) -> float:
    return float(text.lower().rstrip("m"))


def check_prompt(prompt: str, prompt_type: str | None, sources: Sequence[Source]) -> list[str]:
    """Problems found when reading ``prompt`` back against the geometry (empty list = agrees).

    Parses labels, direction words, distances and relation words with the templates of
    ``prompt_type`` and compares them with :func:`prompt_facts`; also reports ambiguous
    relations and duplicate labels. Distances must match on the 0.5 m grid exactly.
    """
    if prompt_type is None:
        return [] if not sources else ["prompt_type is null but the clip has sources"]
    if prompt_type not in _N_SOURCES:
        return [f"unknown prompt type {prompt_type!r}"]
    if len(sources) != _N_SOURCES[prompt_type]:
        return [f"prompt type {prompt_type} needs {_N_SOURCES[prompt_type]} source(s), "
                f"clip has {len(sources)}"]
    if prompt_type == "F" and is_horizontal(sources):
        return [_NO_F]
    problems: list[str] = []
    try:
        _require_unambiguous(prompt_type, sources)
    except ValueError as exc:
        problems.append(str(exc))
    readings = parse_prompt(prompt, prompt_type)
    if not readings:
        return problems + [f"prompt {prompt!r} matches no type-{prompt_type} phrasing"]
    found = [_reading_problems(r, prompt_type, sources) for r in readings]
    return problems + min(found, key=len)


def _reading_problems(fields: dict[str, str], prompt_type: str,
                      sources: Sequence[Source]) -> list[str]:
    problems: list[str] = []
    facts = prompt_facts(prompt_type, sources)
    if prompt_type in ("A", "B"):
        # each slot of the text is matched to the source carrying its label (order-free)
        by_label = {_norm_label(f["label"]): f for f in facts["sources"]}
        named = [_norm_label(fields[f"s{i}"]) for i in range(len(facts["sources"]))]
        if sorted(named) != sorted(by_label):
            return [f"prompt names {', '.join(repr(fields[f's{i}']) for i in range(len(named)))}"
                    f"; expected {', '.join(repr(f['label']) for f in facts['sources'])}"]
        for i, label in enumerate(named):
            f = by_label[label]
            words = [w.strip().lower() for w in fields[f"dir{i}"].split(",")]
            if words != f["direction"]:
                problems.append(f"{f['label']}: prompt says {', '.join(words)}, "
                                f"geometry says {', '.join(f['direction'])}")
            said = _parse_m(fields[f"d{i}"])
            if not math.isclose(said, f["distance"]):
                problems.append(f"{f['label']}: prompt says {said:g}m, "
                                f"geometry says {f['distance']:g}m")
        return problems
    if prompt_type == "C":
        named = {_norm_label(fields["s0"]), _norm_label(fields["s1"])}
        if named != {_norm_label(x) for x in facts["labels"]}:
            problems.append(f"prompt names {fields['s0']!r} and {fields['s1']!r}, expected "
                            f"{facts['labels'][0]!r} and {facts['labels'][1]!r}")
        said = _parse_m(fields["dist"])
        if not math.isclose(said, facts["distance"]):
            problems.append(f"prompt says the sources are {said:g}m apart, geometry says "
                            f"{facts['distance']:g}m")
        return problems
    labels = [_norm_label(x) for x in facts["labels"]]
    subj, obj = _norm_label(fields["a"]), _norm_label(fields["b"])
    if sorted([subj, obj]) != sorted(labels) or subj == obj:
        return [f"prompt relates {fields['a']!r} and {fields['b']!r}, expected "
                           f"{facts['labels'][0]!r} and {facts['labels'][1]!r}"]
    said = fields["rel"].lower()
    if prompt_type == "G":
        said = next(k for k, ps in _G_PHRASES.items() if said in ps)
    si, oi = labels.index(subj), labels.index(obj)
    truth = relation_of(prompt_type, sources[si], sources[oi])
    if said != truth:
        problems.append(f"prompt says {fields['a']} is {said} {fields['b']}; geometry says "
                        f"{truth}")
    return problems


# --------------------------------------------------------------------------- perturbation

_LR_RE = re.compile(r"\b(left|right)\b", re.IGNORECASE)


def _swap_case(word: str, replacement: str) -> str:
    if word.isupper():
        return replacement.upper()
    if word[:1].isupper():
        return replacement.capitalize()
    return replacement


def swap_left_right(prompt: str) -> str:
    """``prompt`` with every whole word "left" and "right" exchanged (case kept).

    Direction words ("left, front, above") and relations ("to the left of") both flip, so a
    correct prompt becomes the prompt of the mirrored scene.
    """
    def repl(m: re.Match[str]) -> str:
        w = m.group(0)
        return _swap_case(w, "right" if w.lower() == "left" else "left")

    return _LR_RE.sub(repl, prompt)
