"""Spatial conventions and direction words.

Coordinates follow SOFA: azimuth in degrees counter-clockwise from the front (90 = left,
-90 = right, 180 = behind), elevation in degrees up from the horizontal plane, distance in
metres. Direction words are the paper's octants: (left|right) x (front|behind) x (above|below).

Horizontal datasets (:data:`HORIZONTAL`): a head whose measured directions do not cover the
eight octants (e.g. a 1-degree horizontal-plane HRIR set, where elevation 0 is itself the
above/below boundary) is simulated with sources near the horizontal plane, described by the two
words (lateral, frontal) only; :func:`direction_words_for` gives the words of either set.
"""

from __future__ import annotations

import math

import numpy as np

DIRECTION_AXES = (("left", "right"), ("front", "behind"), ("above", "below"))
#: Direction sets of a dataset (``dataset.json`` field ``direction_words``): the paper's eight
#: octants (three words), or the horizontal variant (two words: lateral, frontal).
OCTANTS = "octants"
HORIZONTAL = "horizontal"
DIRECTION_SETS = (OCTANTS, HORIZONTAL)
#: Words that state a vertical position or relation (never in a horizontal dataset's text).
VERTICAL_WORDS = ("above", "below", "higher", "lower")
#: Distances in the paper are multiples of this step (metres).
DISTANCE_STEP = 0.5
DISTANCE_MIN = 0.5
DISTANCE_MAX = 10.0


def wrap_azimuth(az: float) -> float:
    """Wrap an azimuth in degrees to the interval (-180, 180]."""
    a = math.fmod(float(az), 360.0)
    if a <= -180.0:
        a += 360.0
    elif a > 180.0:
        a -= 360.0
    return a


def direction_words(azimuth: float, elevation: float) -> tuple[str, str, str]:
    """Return the octant words (lateral, frontal, vertical) of a direction in degrees.

    Points exactly on a boundary (azimuth 0/±90/180, elevation 0) resolve to left, front,
    above; the simulator keeps sources away from boundaries so this never matters there.
    """
    a = wrap_azimuth(azimuth)
    lateral = "left" if a >= 0.0 else "right"
    frontal = "front" if abs(a) <= 90.0 else "behind"
    vertical = "above" if elevation >= 0.0 else "below"
    return (lateral, frontal, vertical)


def direction_words_for(azimuth: float, elevation: float, direction_set: str = OCTANTS
                        ) -> tuple[str, ...]:
    """The words of a direction in degrees for a dataset's direction set: the three octant
    words (:func:`direction_words`) for :data:`OCTANTS`, (lateral, frontal) for
    :data:`HORIZONTAL`. ValueError for another set."""
    words = direction_words(azimuth, elevation)
    if direction_set == OCTANTS:
        return words
    if direction_set == HORIZONTAL:
        return words[:2]
    raise ValueError(f"unknown direction set {direction_set!r} (one of {list(DIRECTION_SETS)})")


def azimuth_margin(azimuth: float) -> float:
    """Smallest angle in degrees from the azimuth to the median (0/180) or frontal (±90)
    plane: the left/right and front/back boundaries."""
    a = wrap_azimuth(azimuth)
    return min(abs(a), abs(abs(a) - 90.0), abs(180.0 - abs(a)))


def boundary_margin(azimuth: float, elevation: float, direction_set: str = OCTANTS) -> float:
    """Smallest angle in degrees from the direction to any boundary of its words.

    Boundaries: the median plane (azimuth 0/180), the frontal plane (azimuth ±90) and, for
    :data:`OCTANTS` only, the horizontal plane (elevation 0); a :data:`HORIZONTAL` direction
    has no above/below word, so its margin is :func:`azimuth_margin`.
    """
    if direction_set == HORIZONTAL:
        return azimuth_margin(azimuth)
    return min(azimuth_margin(azimuth), abs(float(elevation)))


def to_cartesian(azimuth: float, elevation: float, distance: float) -> np.ndarray:
    """SOFA spherical (deg, deg, m) to Cartesian metres: x front, y left, z up."""
    az, el = math.radians(azimuth), math.radians(elevation)
    return np.array(
        [distance * math.cos(el) * math.cos(az), distance * math.cos(el) * math.sin(az),
         distance * math.sin(el)]
    )


def great_circle_deg(az1: float, el1: float, az2: float, el2: float) -> float:
    """Angle in degrees between two directions given as (azimuth, elevation) in degrees."""
    u = to_cartesian(az1, el1, 1.0)
    v = to_cartesian(az2, el2, 1.0)
    return math.degrees(math.acos(float(np.clip(np.dot(u, v), -1.0, 1.0))))


def quantize_distance(d: float) -> float:
    """Round a distance in metres to the paper's 0.5 m grid."""
    return round(float(d) / DISTANCE_STEP) * DISTANCE_STEP


def format_distance(d: float) -> str:
    """Format a distance the way prompts and answers write it: '3.5m', '2m'."""
    q = quantize_distance(d)
    return f"{q:g}m"
