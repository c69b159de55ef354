"""Synthetic identity documents of fictional states, for demos and tests.

Every document type has a fixed look - proportions, header band, photo side,
emblem, background pattern, field placement, colours - while each rendered
image gets its own fictional person, numbers, dates and small colour and
pattern jitter. Some types are deliberately alike (same colours, different
layout) so that a classifier has to look at layout, not only at colour.
No state, name or design here is real.

``make_demo_dataset`` writes a folder-per-class dataset of simulated photos
(``classifier.synth.augment.simulate_capture``) or of flat renders, with the
document's corners for each image.
"""
from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from classifier.localise import ID_ASPECT, PASSPORT_ASPECT
from classifier.synth.augment import simulate_capture

RGB = tuple[int, int, int]
Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels
WIDTH = 640  # rendered width in pixels
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


@dataclass(frozen=True)
class DocType:
    """Fixed look of one fictional document type."""

    name: str  # display name, e.g. "ID Card of Veloria"
    state: str  # printed issuing state
    code: str  # three-letter code in the MRZ; Q.. codes are never assigned to real states
    nationality: str
    kind: str  # "id", "passport" or "residence"
    title: str  # printed document title
    subtitle: str  # the title in the state's (invented) language
    primary: RGB  # header band, labels, emblem
    secondary: RGB  # background pattern, stripes
    paper: RGB
    header: str  # band at the "top", "bottom" or left "side"
    photo: str  # portrait on the "left" or "right"
    emblem: str  # "sun", "shield", "star", "diamond" or "crown"
    pattern: str  # guilloche: "rosette", "waves" or "mesh"
    stripe: str  # "diagonal", "wave", "corner", "bars" or "none"
    rows: tuple[tuple[str, ...], ...]  # field labels, row by row
    extras: tuple[str, ...] = ()  # "chip", "ghost", "barcode", "hologram", "mono_photo"
    date_style: str = "dots"  # "dots" 01.02.1990, "month" 01 FEB 1990, "iso" 1990-02-01, "slash" 01/02/1990
    number_format: str = "LLDDDDDDD"  # L letter, D digit
    surname_endings: tuple[str, ...] = ("",)

    @property
    def aspect(self) -> float:
        return PASSPORT_ASPECT if self.kind == "passport" else ID_ASPECT


_VELORIA = dict(state="REPUBLIC OF VELORIA", code="QVL", nationality="VELORIAN",
                primary=(26, 58, 122), secondary=(38, 150, 160), paper=(234, 240, 240),
                surname_endings=("ano", "ella", "ora", "ini"))
_LUNARIS = dict(state="FEDERATION OF LUNARIS", code="QLN", nationality="LUNARIAN",
                primary=(96, 48, 138), secondary=(168, 150, 205), paper=(242, 236, 246),
                surname_endings=("sen", "dahl", "vik", "mar"))
# Estravia and Karvonia share one colour scheme on purpose: alike pairs.
_GREEN_GOLD = dict(primary=(28, 98, 62), secondary=(196, 156, 48), paper=(240, 238, 220))
_ESTRAVIA = dict(state="KINGDOM OF ESTRAVIA", code="QES", nationality="ESTRAVIAN",
                 surname_endings=("escu", "avor", "enko", "ast"), **_GREEN_GOLD)
_KARVONIA = dict(state="COMMONWEALTH OF KARVONIA", code="QKV", nationality="KARVONIAN",
                 surname_endings=("ovan", "ard", "eli", "ski"), **_GREEN_GOLD)
_MARENDIA = dict(state="PRINCIPALITY OF MARENDIA", code="QMR", nationality="MARENDIAN",
                 primary=(158, 30, 42), secondary=(222, 124, 82), paper=(246, 236, 228),
                 surname_endings=("oux", "ier", "and", "ez"))

_PASSPORT_ROWS = (("TYPE", "CODE", "PASSPORT NO."), ("SURNAME",), ("GIVEN NAMES",),
                  ("NATIONALITY", "DATE OF BIRTH", "SEX"), ("PLACE OF BIRTH", "DATE OF ISSUE", "DATE OF EXPIRY"),
                  ("AUTHORITY",))
_PASSPORT_ROWS_B = (("SURNAME",), ("GIVEN NAMES",), ("NATIONALITY", "SEX", "TYPE"),
                    ("DATE OF BIRTH", "PLACE OF BIRTH", "CODE"), ("PASSPORT NO.", "DATE OF ISSUE", "DATE OF EXPIRY"),
                    ("AUTHORITY",))

DOC_TYPES: dict[str, DocType] = {
    "vel_id": DocType(
        name="ID Card of Veloria", kind="id", title="IDENTITY CARD", subtitle="KARTA IDENTALE",
        header="top", photo="left", emblem="sun", pattern="rosette", stripe="wave",
        rows=(("SURNAME",), ("GIVEN NAMES",), ("DATE OF BIRTH", "SEX"), ("NATIONALITY", "DOCUMENT NO."),
              ("DATE OF EXPIRY",)),
        extras=("chip",), date_style="dots", number_format="VLDDDDDDD", **_VELORIA),
    "vel_passport": DocType(
        name="Passport of Veloria", kind="passport", title="PASSPORT", subtitle="PASAPORTO",
        header="top", photo="left", emblem="sun", pattern="rosette", stripe="wave",
        rows=_PASSPORT_ROWS, extras=("ghost",), date_style="month", number_format="VDDDDDDDD", **_VELORIA),
    "lun_id": DocType(
        name="ID Card of Lunaris", kind="id", title="IDENTITY CARD", subtitle="LUNAR IDENTKORT",
        header="side", photo="right", emblem="star", pattern="waves", stripe="diagonal",
        rows=(("DOCUMENT NO.",), ("SURNAME",), ("GIVEN NAMES",), ("SEX", "NATIONALITY"),
              ("DATE OF BIRTH", "DATE OF EXPIRY")),
        extras=("barcode", "mono_photo"), date_style="iso", number_format="LLLDDDDDD", **_LUNARIS),
    "lun_passport": DocType(
        name="Passport of Lunaris", kind="passport", title="PASSPORT", subtitle="REISEPAS LUNARIS",
        header="top", photo="right", emblem="star", pattern="waves", stripe="bars",
        rows=_PASSPORT_ROWS_B, extras=("hologram", "mono_photo"), date_style="iso",
        number_format="LDDDDDDDD", **_LUNARIS),
    "etr_id": DocType(
        name="ID Card of Estravia", kind="id", title="NATIONAL IDENTITY CARD", subtitle="CARTEA ESTRAVA",
        header="top", photo="right", emblem="shield", pattern="mesh", stripe="corner",
        rows=(("SURNAME",), ("GIVEN NAMES",), ("SEX", "NATIONALITY"), ("DATE OF BIRTH",),
              ("DOCUMENT NO.", "DATE OF EXPIRY")),
        extras=("hologram",), date_style="slash", number_format="DDDDDDDDD", **_ESTRAVIA),
    "krv_id": DocType(
        name="ID Card of Karvonia", kind="id", title="IDENTITY CARD", subtitle="KARVONSKA LEGITIMA",
        header="side", photo="left", emblem="diamond", pattern="mesh", stripe="corner",
        rows=(("SURNAME",), ("GIVEN NAMES",), ("DATE OF BIRTH", "SEX"), ("PLACE OF BIRTH",),
              ("DOCUMENT NO.", "DATE OF EXPIRY")),
        extras=("chip", "ghost"), date_style="dots", number_format="KVDDDDDDL", **_KARVONIA),
    "etr_passport": DocType(
        name="Passport of Estravia", kind="passport", title="PASSPORT", subtitle="PASAPORT ESTRAV",
        header="top", photo="left", emblem="shield", pattern="mesh", stripe="corner",
        rows=_PASSPORT_ROWS, extras=("hologram",), date_style="slash", number_format="EDDDDDDDD",
        **_ESTRAVIA),
    "krv_passport": DocType(
        name="Passport of Karvonia", kind="passport", title="PASSPORT", subtitle="PUTOVNICA KARVONA",
        header="side", photo="right", emblem="diamond", pattern="mesh", stripe="corner",
        rows=_PASSPORT_ROWS_B, extras=("ghost",), date_style="dots", number_format="KDDDDDDDD",
        **_KARVONIA),
    "mar_id": DocType(
        name="ID Card of Marendia", kind="id", title="IDENTITY CARD", subtitle="CARTE DE MARENDE",
        header="bottom", photo="left", emblem="crown", pattern="rosette", stripe="bars",
        rows=(("SURNAME",), ("GIVEN NAMES",), ("DATE OF BIRTH", "SEX"), ("NATIONALITY",),
              ("DOCUMENT NO.", "DATE OF EXPIRY")),
        extras=("chip",), date_style="month", number_format="MRDDDDDDD", **_MARENDIA),
    "mar_residence": DocType(
        name="Residence Permit of Marendia", kind="residence", title="RESIDENCE PERMIT",
        subtitle="TITRE DE SEJOUR MARENDE", header="top", photo="right", emblem="crown",
        pattern="rosette", stripe="bars",
        rows=(("SURNAME",), ("GIVEN NAMES",), ("NATIONALITY", "SEX"), ("DATE OF BIRTH", "PERMIT NO."),
              ("TYPE OF PERMIT",), ("VALID UNTIL", "REMARKS")),
        extras=("ghost",), date_style="month", number_format="RDDDDDDDL", **_MARENDIA),
}

_NATIONALITIES = tuple(sorted({t.nationality for t in DOC_TYPES.values()} | {"ALDERIAN", "SOLVENIAN"}))
_SYLLABLES = ("ka", "lo", "ri", "an", "ve", "mi", "sa", "tor", "el", "na", "da", "vin", "ra", "to", "len",
              "mar", "is", "ol", "ne", "bri", "co", "dra", "fe", "gal", "hu", "ja", "ker", "lu", "mo", "nor",
              "pe", "quin", "sel", "ta", "ul", "vor", "wen", "ya", "zel", "bel")
_GIVEN_F = ("Alira", "Belen", "Corin", "Daria", "Elsin", "Farah", "Greta", "Halia", "Ilsa", "Jora", "Kesia",
            "Liva", "Mirel", "Nadia", "Orla", "Pella", "Runa", "Selma", "Tavi", "Vesna", "Ysolde", "Zora")
_GIVEN_M = ("Aldo", "Bram", "Casimir", "Dario", "Emil", "Falk", "Goran", "Henrik", "Ivo", "Janek", "Kasper",
            "Lenz", "Matteo", "Niko", "Oskar", "Pavel", "Ruben", "Stellan", "Teo", "Vidar", "Yannis", "Zeno")
_FONT_FILES = {"regular": "DejaVuSans.ttf", "bold": "DejaVuSans-Bold.ttf",
               "serif": "DejaVuSerif-Bold.ttf", "mono": "DejaVuSansMono-Bold.ttf"}
_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"),
              Path("/usr/share/fonts/TTF"))


@lru_cache(maxsize=None)
def _font(style: str, size: int) -> ImageFont.FreeTypeFont:
    """DejaVu when installed, else Pillow's bundled scalable font: no system font is required."""
    for folder in _FONT_DIRS:
        path = folder / _FONT_FILES[style]
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


# --------------------------------------------------------------------------
# Content: the fictional holder
# --------------------------------------------------------------------------

def _word(rng: np.random.Generator, syllables: int) -> str:
    return "".join(rng.choice(_SYLLABLES, syllables)).capitalize()


def _date(rng: np.random.Generator, first_year: int, last_year: int) -> dt.date:
    start, end = dt.date(first_year, 1, 1).toordinal(), dt.date(last_year, 12, 31).toordinal()
    return dt.date.fromordinal(int(rng.integers(start, end + 1)))


def _format_date(d: dt.date, style: str) -> str:
    return {"dots": f"{d.day:02d}.{d.month:02d}.{d.year}", "month": f"{d.day:02d} {MONTHS[d.month - 1]} {d.year}",
            "iso": d.isoformat(), "slash": f"{d.day:02d}/{d.month:02d}/{d.year}"}[style]


def _number(rng: np.random.Generator, pattern: str) -> str:
    letters, digits = "ABCDEFGHJKLMNPRSTUVWXYZ", "0123456789"
    return "".join(rng.choice(list(letters)) if c == "L" else rng.choice(list(digits)) if c == "D" else c
                   for c in pattern)


def _person(t: DocType, rng: np.random.Generator) -> dict[str, str]:
    """Field values for one holder, keyed by field label, plus MRZ ingredients."""
    sex = "F" if rng.random() < 0.5 else "M"
    names = _GIVEN_F if sex == "F" else _GIVEN_M
    given = " ".join(rng.choice(names, int(rng.integers(1, 3)), replace=False))
    surname = _word(rng, int(rng.integers(1, 3))) + str(rng.choice(t.surname_endings))
    birth = _date(rng, 1950, 2006)
    issue = _date(rng, 2016, 2025)
    years = 10 if t.kind == "passport" else int(rng.choice([5, 10]))
    expiry = issue.replace(year=issue.year + years, day=min(issue.day, 28))
    number = _number(rng, t.number_format)
    place = (_word(rng, int(rng.integers(2, 4))) + str(rng.choice(["", "burg", "ova", "stad", "mont"]))).upper()
    nationality = str(rng.choice([n for n in _NATIONALITIES if n != t.nationality])) \
        if t.kind == "residence" else t.nationality
    fmt = partial(_format_date, style=t.date_style)
    return {
        "SURNAME": surname.upper(), "GIVEN NAMES": given.upper(), "SEX": sex, "NATIONALITY": nationality,
        "DATE OF BIRTH": fmt(birth), "PLACE OF BIRTH": place, "DATE OF ISSUE": fmt(issue),
        "DATE OF EXPIRY": fmt(expiry), "VALID UNTIL": fmt(expiry),
        "DOCUMENT NO.": number, "PASSPORT NO.": number, "PERMIT NO.": number, "TYPE": "P", "CODE": t.code,
        "AUTHORITY": str(rng.choice(["MINISTRY OF INTERIOR", "CIVIL REGISTRY", f"PREFECTURE {place}",
                                     "STATE CHANCELLERY"])),
        "TYPE OF PERMIT": str(rng.choice(["PERMANENT", "TEMPORARY", "WORK", "STUDY", "FAMILY"])),
        "REMARKS": str(rng.choice(["NONE", "EMPLOYMENT OK", "SEE FILE"])),
        "_birth": birth.strftime("%y%m%d"), "_expiry": expiry.strftime("%y%m%d"),
        "_surname": surname.upper(), "_given": given.upper(),
    }


def _check_digit(field: str) -> str:
    """ICAO 9303 check digit (weights 7, 3, 1), so the MRZ looks internally consistent."""
    values = [int(c) if c.isdigit() else ord(c) - 55 if c.isalpha() else 0 for c in field]
    return str(sum(v * w for v, w in zip(values, (7, 3, 1) * 20)) % 10)


def _mrz(t: DocType, p: dict[str, str], rng: np.random.Generator) -> tuple[str, str]:
    """Two 44-character passport MRZ lines."""
    name = (p["_surname"] + "<<" + p["_given"]).replace(" ", "<").replace("-", "<")
    line1 = ("P<" + t.code + name + "<" * 44)[:44]
    number = (p["PASSPORT NO."] + "<" * 9)[:9]
    personal = _number(rng, "DDDDDDDDDD") + "<<<<"
    parts = [number + _check_digit(number), t.code, p["_birth"] + _check_digit(p["_birth"]), p["SEX"],
             p["_expiry"] + _check_digit(p["_expiry"]), personal + _check_digit(personal)]
    composite = parts[0] + parts[2] + parts[4] + parts[5]
    return line1, "".join(parts) + _check_digit(composite)


# --------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------

def _mix(a: Sequence[float], b: Sequence[float], f: float) -> RGB:
    """Colour f of the way from a to b."""
    return tuple(int(round(x + (y - x) * f)) for x, y in zip(a, b))


def _jitter(colour: RGB, rng: np.random.Generator, amount: int = 6) -> RGB:
    """Slight print/ink variation that keeps the type's colour identity."""
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in colour)


def _guilloche(a: np.ndarray, t: DocType, colours: tuple[RGB, RGB], rng: np.random.Generator) -> None:
    """Fine overlapping sinusoidal line patterns, the classic security-print background."""
    h, w = a.shape[:2]
    curves: list[tuple[np.ndarray, RGB]] = []
    freq = rng.uniform(0.96, 1.04)
    phase = rng.uniform(0, 2 * np.pi)
    if t.pattern == "rosette":
        theta = np.linspace(0, 2 * np.pi, 720)
        for centre, colour in (((0.72 * w, 0.55 * h), colours[0]), ((0.25 * w, 0.35 * h), colours[1])):
            for j in range(14):
                r = 0.06 * w + j * 0.022 * w + 0.012 * w * np.sin(round(12 * freq) * theta + phase + j * 0.5)
                pts = np.stack([centre[0] + r * np.cos(theta), centre[1] + r * np.sin(theta)], axis=1)
                curves.append((pts, colour))
    elif t.pattern == "waves":
        x = np.linspace(0, w, 320)
        for j in range(26):
            y0 = j * h / 25
            y = y0 + 0.03 * h * np.sin(2 * np.pi * x / (0.21 * w * freq) + phase + j * 0.4)
            curves.append((np.stack([x, y], axis=1), colours[j % 2]))
    else:  # mesh: two crossing families of slanted sine waves
        s = np.linspace(-0.2 * w, 1.2 * w, 360)
        for j in range(30):
            offset = -0.6 * h + j * 2.2 * h / 30
            for sign, colour in ((1, colours[0]), (-1, colours[1])):
                y = offset + sign * 0.45 * (s - w / 2) + 0.02 * h * np.sin(2 * np.pi * s / (0.08 * w * freq) + phase)
                curves.append((np.stack([s, y], axis=1), colour))
    for pts, colour in curves:
        cv2.polylines(a, [np.round(pts * 4).astype(np.int32)], False, colour, 1, cv2.LINE_AA, shift=2)


def _emblem(a: np.ndarray, kind: str, centre: tuple[float, float], r: float, colour: RGB, accent: RGB) -> None:
    """The state's emblem: a simple filled shape with an inner detail in the accent colour."""
    cx, cy = centre

    def poly(points: np.ndarray, fill: RGB) -> None:
        cv2.fillPoly(a, [np.round(np.asarray(points) * 4).astype(np.int32)], fill, cv2.LINE_AA, shift=2)

    if kind == "sun":
        for ray in np.linspace(0, 2 * np.pi, 16, endpoint=False):
            p = (int(cx + r * np.cos(ray)), int(cy + r * np.sin(ray)))
            cv2.line(a, (int(cx), int(cy)), p, colour, max(1, int(r / 8)), cv2.LINE_AA)
        cv2.circle(a, (int(cx), int(cy)), int(r * 0.6), colour, -1, cv2.LINE_AA)
        cv2.circle(a, (int(cx), int(cy)), int(r * 0.35), accent, -1, cv2.LINE_AA)
    elif kind == "shield":
        shape = np.array([[-0.8, -0.9], [0.8, -0.9], [0.8, 0.1], [0, 1.0], [-0.8, 0.1]])
        poly(shape * r + (cx, cy), colour)
        poly(np.array([[-0.55, -0.2], [0, 0.25], [0.55, -0.2], [0.55, 0.05], [0, 0.55], [-0.55, 0.05]]) * r
             + (cx, cy), accent)
    elif kind == "star":
        radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.45) * r
        ang = np.linspace(0, 2 * np.pi, 10, endpoint=False) - np.pi / 2
        poly(np.stack([cx + radii * np.cos(ang), cy + radii * np.sin(ang)], axis=1), colour)
        cv2.circle(a, (int(cx), int(cy)), int(r * 0.2), accent, -1, cv2.LINE_AA)
    elif kind == "diamond":
        poly(np.array([[0, -1], [0.75, 0], [0, 1], [-0.75, 0]]) * r + (cx, cy), colour)
        poly(np.array([[0, -0.5], [0.37, 0], [0, 0.5], [-0.37, 0]]) * r + (cx, cy), accent)
    else:  # crown
        poly(np.array([[-0.9, 0.6], [-0.9, -0.5], [-0.45, 0], [0, -0.8], [0.45, 0], [0.9, -0.5], [0.9, 0.6]]) * r
             + (cx, cy), colour)
        cv2.rectangle(a, (int(cx - 0.9 * r), int(cy + 0.35 * r)), (int(cx + 0.9 * r), int(cy + 0.6 * r)),
                      accent, -1, cv2.LINE_AA)


def _blend(a: np.ndarray, overlay: np.ndarray, alpha: float) -> None:
    """Translucent ink: blend ``overlay`` into ``a`` in place."""
    cv2.addWeighted(overlay, alpha, a, 1 - alpha, 0, dst=a)


def _stripe(a: np.ndarray, t: DocType, colour: RGB, rng: np.random.Generator) -> None:
    """The type's translucent decorative band."""
    h, w = a.shape[:2]
    overlay = a.copy()
    if t.stripe == "diagonal":
        pts = np.array([[0, 0.85 * h], [0, h], [0.15 * w, h], [w, 0.25 * h], [w, 0.1 * h]])
        cv2.fillPoly(overlay, [pts.astype(np.int32)], colour, cv2.LINE_AA)
    elif t.stripe == "wave":
        x = np.linspace(0, w, 200)
        top = 0.72 * h + 0.05 * h * np.sin(2 * np.pi * x / w * 1.5 + rng.uniform(-0.2, 0.2))
        pts = np.concatenate([np.stack([x, top], 1), np.stack([x[::-1], top[::-1] + 0.07 * h], 1)])
        cv2.fillPoly(overlay, [pts.astype(np.int32)], colour, cv2.LINE_AA)
    elif t.stripe == "corner":
        pts = np.array([[w, 0.55 * h], [w, h], [0.62 * w, h]])
        cv2.fillPoly(overlay, [pts.astype(np.int32)], colour, cv2.LINE_AA)
    elif t.stripe == "bars":
        for y in (0.2, 0.215, 0.9):
            cv2.rectangle(overlay, (0, int(y * h)), (w, int(y * h + 0.008 * h)), colour, -1)
    _blend(a, overlay, 0.35)


def _portrait(a: np.ndarray, box: tuple[int, int, int, int], rng: np.random.Generator, mono: bool) -> None:
    """A face-like silhouette: backdrop, shoulders, neck, head, hair, eyes, mouth."""
    x0, y0, x1, y1 = box
    pw, ph = x1 - x0, y1 - y0
    photo = np.empty((ph, pw, 3), np.uint8)
    photo[:] = _jitter([(214, 226, 238), (232, 232, 228), (206, 214, 222), (238, 236, 226)][rng.integers(4)], rng, 8)
    skin = _jitter([(241, 204, 178), (224, 172, 132), (190, 134, 96), (141, 94, 64), (96, 62, 44)][rng.integers(5)],
                   rng, 10)
    hair = _jitter([(30, 24, 20), (80, 52, 30), (150, 110, 60), (200, 170, 110), (150, 150, 150)][rng.integers(5)],
                   rng, 10)
    clothes = _jitter(tuple(int(c) for c in rng.integers(20, 160, 3)), rng, 0)
    s = rng.uniform(0.92, 1.08)
    cx, cy = pw / 2 + rng.normal(0, pw * 0.03), ph * (0.42 + rng.normal(0, 0.015))
    hx, hy = 0.21 * pw * s, 0.26 * ph * s
    ell = partial(cv2.ellipse, photo, angle=0, startAngle=0, endAngle=360, thickness=-1, lineType=cv2.LINE_AA)
    if rng.random() < 0.5:  # long hair falls behind the shoulders
        ell(center=(int(cx), int(cy + 0.1 * hy)), axes=(int(1.3 * hx), int(1.25 * hy)), color=hair)
    ell(center=(int(cx), int(ph * 1.02)), axes=(int(0.48 * pw), int(0.28 * ph)), color=clothes)
    cv2.rectangle(photo, (int(cx - 0.4 * hx), int(cy + 0.6 * hy)), (int(cx + 0.4 * hx), int(cy + 1.35 * hy)), skin, -1)
    ell(center=(int(cx), int(cy)), axes=(int(hx), int(hy)), color=skin)
    cv2.ellipse(photo, (int(cx), int(cy - 0.25 * hy)), (int(1.06 * hx), int(0.85 * hy)), 0, 180, 360, hair, -1,
                cv2.LINE_AA)
    for side in (-1, 1):
        eye = (max(2, int(0.12 * hx)), max(1, int(0.05 * hy)))
        cv2.ellipse(photo, (int(cx + side * 0.38 * hx), int(cy + 0.05 * hy)), eye, 0, 0, 360, (40, 30, 30), -1,
                    cv2.LINE_AA)
    cv2.line(photo, (int(cx - 0.3 * hx), int(cy + 0.55 * hy)), (int(cx + 0.3 * hx), int(cy + 0.55 * hy)),
             _mix(skin, (90, 30, 30), 0.5), max(1, int(0.05 * hy)), cv2.LINE_AA)
    if mono:
        photo = cv2.cvtColor(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    a[y0:y1, x0:x1] = photo
    cv2.rectangle(a, (x0, y0), (x1 - 1, y1 - 1), (90, 90, 90), 1)


def _chip(a: np.ndarray, x: int, y: int, size: int) -> None:
    """Gold contact pad of a smart card."""
    w, h = int(size * 1.25), size
    cv2.rectangle(a, (x, y), (x + w, y + h), (206, 172, 84), -1, cv2.LINE_AA)
    for f in (0.33, 0.66):
        cv2.line(a, (x, int(y + f * h)), (x + w, int(y + f * h)), (150, 120, 50), 1, cv2.LINE_AA)
    cv2.line(a, (x + w // 2, y), (x + w // 2, y + h), (150, 120, 50), 1, cv2.LINE_AA)
    cv2.rectangle(a, (x, y), (x + w, y + h), (130, 100, 40), 1, cv2.LINE_AA)


def _barcode(a: np.ndarray, x: int, y: int, w: int, h: int, rng: np.random.Generator) -> None:
    """Random bars that look like a 1-D barcode."""
    pos = x
    while pos < x + w:
        bar = int(rng.integers(1, 4))
        if rng.random() < 0.55:
            cv2.rectangle(a, (pos, y), (min(pos + bar, x + w) - 1, y + h), (20, 20, 20), -1)
        pos += bar


def _hologram(a: np.ndarray, centre: tuple[int, int], axes: tuple[int, int]) -> None:
    """Faint rainbow oval, like an optically variable security feature."""
    h, w = a.shape[:2]
    hue = np.linspace(0, 179, w, dtype=np.float32)[None, :].repeat(h, 0).astype(np.uint8)
    rainbow = cv2.cvtColor(cv2.merge([hue, np.full_like(hue, 120), np.full_like(hue, 255)]), cv2.COLOR_HSV2RGB)
    overlay = a.copy()
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 255, -1, cv2.LINE_AA)
    overlay[mask > 0] = rainbow[mask > 0]
    _blend(a, overlay, 0.3)


def _text(d: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, style: str, size: int, fill: RGB,
          max_width: float | None = None) -> None:
    """Draw text, shrinking the font until it fits ``max_width``."""
    while max_width is not None and size > 7 and d.textlength(text, font=_font(style, size)) > max_width:
        size -= 1
    d.text(xy, text, font=_font(style, size), fill=fill)


def _vertical_text(img: Image.Image, text: str, box: tuple[int, int, int, int], size: int, fill: RGB) -> None:
    """Text reading bottom to top, centred in ``box`` (for side header bands)."""
    x0, y0, x1, y1 = box
    font = _font("bold", size)
    while size > 7 and font.getlength(text) > (y1 - y0) * 0.92:
        size -= 1
        font = _font("bold", size)
    layer = Image.new("L", (int(font.getlength(text)) + 4, size + 8), 0)
    ImageDraw.Draw(layer).text((2, 2), text, font=font, fill=255)
    layer = layer.rotate(90, expand=True)
    pos = (x0 + (x1 - x0 - layer.width) // 2, y0 + (y1 - y0 - layer.height) // 2)
    img.paste(Image.new("RGB", layer.size, fill), pos, layer)


@dataclass(frozen=True)
class _Layout:
    """Pixel regions of one document type. They depend on the type alone, never on the generator,
    so every render of a type puts everything in the same place."""

    width: int
    height: int
    margin: int
    band: Box  # header band
    content: Box  # portrait, fields and extras: inside the margins, below any title line, above any MRZ zone
    title_top: int  # top of the title line, for types whose band is not at the top
    mrz_top: int  # top of the passport MRZ zone; ``height`` when there is none
    emblem_at: tuple[float, float]  # centre of the emblem in the band
    emblem_r: float
    photo: Box
    fields: tuple[int, int, int, float]  # left, top, right, bottom of the field rows
    below_fields: Box  # free strip under the fields, for chip, barcode and ghost portrait
    below_photo: Box  # free strip under the portrait, for the signature


@dataclass(frozen=True)
class _Colours:
    """One render's jittered colours: the type's print colours and the ink of the personal data."""

    primary: RGB
    secondary: RGB
    paper: RGB
    ink: RGB


def _band_and_content(t: DocType, width: int, height: int, margin: int, mrz_top: int) -> tuple[Box, Box]:
    """The header band, and the area inside the margins that the band and the MRZ zone leave free."""
    band = int((0.13 if t.kind == "passport" else 0.16) * height)
    if t.header == "top":
        return (0, 0, width, band), (margin, band + margin, width - margin, mrz_top - margin)
    if t.header == "bottom":
        return (0, height - band, width, height), (margin, margin, width - margin, height - band - margin)
    side = int(0.11 * width)
    return (0, 0, side, mrz_top), (side + margin, margin, width - margin, mrz_top - margin)


def _band_emblem(t: DocType, band: Box) -> tuple[tuple[float, float], float]:
    """Centre and radius of the emblem: near the top of a side band, else at the end of the band away from the
    photo (the right end of a bottom band)."""
    bx0, by0, bx1, by1 = band
    if t.header == "side":
        centre = ((bx0 + bx1) / 2, by0 + (bx1 - bx0) * 0.6)
    elif t.photo == "left" or t.header == "bottom":
        centre = (bx1 - (by1 - by0) * 0.7, (by0 + by1) / 2)
    else:
        centre = (bx0 + (by1 - by0) * 0.7, (by0 + by1) / 2)
    return centre, 0.36 * min(bx1 - bx0, by1 - by0)


def _layout(t: DocType) -> _Layout:
    """Place the band, title line, portrait (3:4, at the top of the content) and the field rows beside it."""
    width, height = WIDTH, round(WIDTH / t.aspect)
    margin = int(0.03 * width)
    mrz_top = int(0.8 * height) if t.kind == "passport" else height
    band, (x0, title_top, x1, y1) = _band_and_content(t, width, height, margin, mrz_top)
    top = title_top + (0 if t.header == "top" else int(0.09 * height))  # room for a title line outside the band
    pw = int((0.24 if t.kind == "passport" else 0.26) * width)
    ph = int(pw * 4 / 3)
    px0 = x0 if t.photo == "left" else x1 - pw
    fx0 = px0 + pw + 2 * margin if t.photo == "left" else x0
    fx1 = x1 if t.photo == "left" else px0 - 2 * margin
    rows_y1 = top + len(t.rows) * (0.082 if t.kind == "passport" else 0.1) * height
    emblem_at, emblem_r = _band_emblem(t, band)
    return _Layout(width=width, height=height, margin=margin, band=band, content=(x0, top, x1, y1),
                   title_top=title_top, mrz_top=mrz_top, emblem_at=emblem_at, emblem_r=emblem_r,
                   photo=(px0, top, px0 + pw, top + ph), fields=(fx0, top, fx1, rows_y1),
                   below_fields=(fx0, int(rows_y1) + margin // 2, fx1, y1),
                   below_photo=(px0, top + ph + margin // 2, px0 + pw, y1))


def _background(t: DocType, lay: _Layout, colours: _Colours, rng: np.random.Generator) -> np.ndarray:
    """Blank paper with the type's guilloche and decorative stripe: the image everything else is drawn on."""
    a = np.empty((lay.height, lay.width, 3), np.uint8)
    a[:] = colours.paper
    _guilloche(a, t, (_mix(colours.paper, colours.secondary, 0.45), _mix(colours.paper, colours.primary, 0.3)), rng)
    _stripe(a, t, _mix(colours.paper, colours.secondary, 0.7), rng)
    return a


def _draw_zones(a: np.ndarray, t: DocType, lay: _Layout, colours: _Colours) -> None:
    """Solid header band; on passports a paler MRZ zone, as the MRZ is printed on a plain strip."""
    bx0, by0, bx1, by1 = lay.band
    cv2.rectangle(a, (bx0, by0), (bx1 - 1, by1 - 1), colours.primary, -1)
    if t.kind == "passport":
        pale = np.array(_mix(colours.paper, (255, 255, 255), 0.6))
        a[lay.mrz_top:] = (0.5 * a[lay.mrz_top:] + 0.5 * pale).astype(np.uint8)


def _draw_emblems(a: np.ndarray, t: DocType, lay: _Layout, colours: _Colours) -> None:
    """A faint watermark of the emblem over the middle of the content, then the emblem itself in the band."""
    x0, y0, x1, y1 = lay.content
    overlay = a.copy()
    _emblem(overlay, t.emblem, ((x0 + x1) / 2, (y0 + y1) / 2), 0.22 * lay.height, colours.primary, colours.secondary)
    _blend(a, overlay, 0.08)
    _emblem(a, t.emblem, lay.emblem_at, lay.emblem_r, _mix(colours.primary, (255, 255, 255), 0.85), colours.secondary)


def _ghost_portrait(a: np.ndarray, photo: Box, area: Box) -> None:
    """Small faded copy of the portrait in the bottom-right corner of ``area``, as on many real documents."""
    px0, py0, px1, py1 = photo
    ph = py1 - py0
    gh = max(ph // 3, min(ph // 2, area[3] - area[1]))
    gw = gh * 3 // 4
    gx, gy = area[2] - gw, area[3] - gh
    ghost = cv2.resize(a[py0:py1, px0:px1], (gw, gh), interpolation=cv2.INTER_AREA)
    a[gy:gy + gh, gx:gx + gw] = (0.35 * ghost + 0.65 * a[gy:gy + gh, gx:gx + gw]).astype(np.uint8)


def _draw_extras(a: np.ndarray, t: DocType, lay: _Layout, rng: np.random.Generator) -> None:
    """The type's security features: chip, barcode and ghost portrait under the fields, hologram over the photo."""
    fx0, fy0, fx1, fy1 = lay.below_fields
    if "chip" in t.extras:
        _chip(a, fx0, fy0, int(0.13 * lay.height))
    if "barcode" in t.extras:
        bw = int(0.45 * (fx1 - fx0))
        _barcode(a, fx1 - bw, fy1 - int(0.1 * lay.height), bw, int(0.09 * lay.height), rng)
    if "ghost" in t.extras:
        _ghost_portrait(a, lay.photo, lay.below_fields)
    if "hologram" in t.extras:
        px0, py0, px1, py1 = lay.photo
        centre = (int(px0 + (px1 - px0) * (0.9 if t.photo == "left" else 0.1)), int(py0 + (py1 - py0) * 0.85))
        _hologram(a, centre, (int(0.09 * lay.width), int(0.06 * lay.width)))


def _draw_signature(a: np.ndarray, lay: _Layout, ink: RGB, rng: np.random.Generator) -> None:
    """The holder's signature under the portrait: a wavy pen line with a little random wander."""
    x0, y0, x1, y1 = lay.below_photo
    inset, h = 0.1 * (x1 - x0), lay.height
    sx = np.linspace(x0 + inset, x1 - inset, 40)
    sy = (y0 + 0.35 * min(0.12 * h, y1 - y0)
          + 0.1 * h * np.sin(sx / rng.uniform(6, 12)) * rng.uniform(0.1, 0.3) + rng.normal(0, 2, 40).cumsum() * 0.3)
    cv2.polylines(a, [np.stack([sx, sy], 1).astype(np.int32)], False, _mix(ink, (30, 40, 150), 0.5), 1, cv2.LINE_AA)


def _draw_band_text(img: Image.Image, t: DocType, lay: _Layout, primary: RGB) -> None:
    """The issuing state in the band beside the emblem (reading upwards in a side band), and under it the title
    when the band is at the top."""
    bx0, by0, bx1, by1 = lay.band
    (ex, ey), er = lay.emblem_at, lay.emblem_r
    white = _mix(primary, (255, 255, 255), 0.95)
    if t.header == "side":
        _vertical_text(img, t.state, (bx0, int(ey + er * 1.3), bx1, by1), int(0.45 * (bx1 - bx0)), white)
        return
    emblem_on_right = ex > lay.width / 2
    tx0 = bx0 + lay.margin if emblem_on_right else int(ex + er * 1.6)
    tx1 = int(ex - er * 1.6) if emblem_on_right else bx1 - lay.margin
    d = ImageDraw.Draw(img)
    band_h = by1 - by0
    _text(d, (tx0, by0 + 0.1 * band_h), t.state, "serif", int(0.42 * band_h), white, tx1 - tx0)
    if t.header == "top":
        _text(d, (tx0, by0 + 0.58 * band_h), f"{t.title}  ·  {t.subtitle}", "regular", int(0.26 * band_h), white,
              tx1 - tx0)


def _draw_title_line(img: Image.Image, t: DocType, lay: _Layout, primary: RGB) -> None:
    """Title and subtitle on their own line above the content, for types whose band has no room for them."""
    d = ImageDraw.Draw(img)
    x0, _, x1, _ = lay.content
    h = lay.height
    _text(d, (x0, lay.title_top + 2), t.title, "bold", int(0.045 * h), primary, x1 - x0)
    _text(d, (x0, lay.title_top + 0.055 * h), t.subtitle, "regular", int(0.028 * h), primary, x1 - x0)


def _draw_fields(img: Image.Image, t: DocType, lay: _Layout, person: dict[str, str], colours: _Colours) -> None:
    """Each row of ``t.rows`` split into equal cells, each a small label over its value."""
    d = ImageDraw.Draw(img)
    fx0, fy0, fx1, fy1 = lay.fields
    row_h = (fy1 - fy0) / len(t.rows)
    label_size, value_size = int(0.3 * row_h), int(0.42 * row_h)
    for r, row in enumerate(t.rows):
        cell_w = (fx1 - fx0) / len(row)
        for c, label in enumerate(row):
            x, y = fx0 + c * cell_w, fy0 + r * row_h
            _text(d, (x, y), label, "regular", label_size, colours.primary, cell_w - 4)
            _text(d, (x, y + 0.36 * row_h), person[label], "bold", value_size, colours.ink, cell_w - 6)


def _draw_mrz(img: Image.Image, t: DocType, lay: _Layout, person: dict[str, str], ink: RGB,
              rng: np.random.Generator) -> None:
    """The two MRZ lines in the MRZ zone, one monospace character per fixed pitch across the page, as ICAO lays
    them out."""
    d = ImageDraw.Draw(img)
    m, zone_h = lay.margin, lay.height - lay.mrz_top
    pitch = (lay.width - 2 * m) / 44
    font = _font("mono", int(pitch * 1.45))
    for line_no, line in enumerate(_mrz(t, person, rng)):
        y = lay.mrz_top + (0.2 + 0.4 * line_no) * zone_h
        for i, ch in enumerate(line):
            d.text((m + (i + 0.5) * pitch, y), ch, font=font, fill=ink, anchor="mt")


def random_doc_type(rng: np.random.Generator) -> DocType:
    """A fictional type none of ``DOC_TYPES`` is: its look drawn at random from the same design
    vocabulary, in random colours. Training shows such documents to the head as ones to be unsure
    of, so that a real document of a type it never learned is not taken for a known one."""
    kind = str(rng.choice(["id", "passport", "residence"]))

    def pick(options) -> str:
        return str(options[int(rng.integers(len(options)))])

    rows = [t.rows for t in DOC_TYPES.values() if (t.kind == "passport") == (kind == "passport")]
    extras = ("chip", "ghost", "barcode", "hologram", "mono_photo")
    return DocType(
        name="Unknown document", state=f"STATE OF {_word(rng, 3).upper()}", code="QXX",
        nationality=_word(rng, 3).upper(), kind=kind, title=pick(["IDENTITY CARD", "PASSPORT", "RESIDENCE PERMIT",
                                                                   "DRIVING LICENCE", "NATIONAL ID"]),
        subtitle=" ".join(_word(rng, 3).upper() for _ in range(2)), primary=_random_rgb(rng, 20, 140),
        secondary=_random_rgb(rng, 60, 220), paper=_random_rgb(rng, 215, 250),
        header=pick(["top", "bottom", "side"]), photo=pick(["left", "right"]),
        emblem=pick(["sun", "shield", "star", "diamond", "crown"]), pattern=pick(["rosette", "waves", "mesh"]),
        stripe=pick(["diagonal", "wave", "corner", "bars", "none"]), rows=rows[int(rng.integers(len(rows)))],
        extras=tuple(e for e in extras if rng.random() < 0.3), date_style=pick(["dots", "month", "iso", "slash"]))


def _random_rgb(rng: np.random.Generator, low: int, high: int) -> RGB:
    return tuple(int(c) for c in rng.integers(low, high, 3))


def render_document(doc_type: str | DocType, rng: np.random.Generator) -> Image.Image:
    """Flat, tightly cropped render (about 640 px wide) of one document of ``doc_type`` (a key of
    ``DOC_TYPES``, or a type of its own) with a random fictional holder."""
    t = DOC_TYPES[doc_type] if isinstance(doc_type, str) else doc_type
    lay = _layout(t)
    # The generator is drawn from in this order (the holder between the print colours and the ink):
    # reordering would change every render, and the demo datasets and models built from them.
    primary, secondary, paper = _jitter(t.primary, rng), _jitter(t.secondary, rng), _jitter(t.paper, rng, 4)
    person = _person(t, rng)
    colours = _Colours(primary, secondary, paper, ink=_jitter((25, 25, 35), rng, 10))
    a = _background(t, lay, colours, rng)
    _draw_zones(a, t, lay, colours)
    _draw_emblems(a, t, lay, colours)
    _portrait(a, lay.photo, rng, "mono_photo" in t.extras)
    _draw_extras(a, t, lay, rng)
    _draw_signature(a, lay, colours.ink, rng)
    img = Image.fromarray(a)
    _draw_band_text(img, t, lay, colours.primary)
    if t.header != "top":
        _draw_title_line(img, t, lay, colours.primary)
    _draw_fields(img, t, lay, person, colours)
    if t.kind == "passport":
        _draw_mrz(img, t, lay, person, colours.ink, rng)
    return img


# --------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------

def _write_one(job: tuple[int, int], *, out: Path, seed: int, flat: bool, backgrounds: tuple[Path, ...],
               framing: str) -> None:
    """Render, optionally photograph, and save image ``job`` = (type index, image index).
    Its randomness depends only on (seed, type, index): identical for any worker count."""
    t_index, i = job
    keys = list(DOC_TYPES)
    rng = np.random.default_rng([seed, t_index, i])
    doc = render_document(keys[t_index], rng)
    record = {}
    if flat:
        img, quality = doc, 95
        quad = np.array([[0, 0], [doc.width, 0], [doc.width, doc.height], [0, doc.height]], float)
    else:
        # a document of another type, for the captures that show a second one beside it
        other = render_document(keys[(t_index + 1 + int(rng.integers(len(keys) - 1))) % len(keys)], rng)
        record["capture"] = {}
        img, quad = simulate_capture(doc, rng, backgrounds=backgrounds, framing=framing, distractors=[other],
                                     conditions=record["capture"])
        quality = int(rng.integers(70, 96))
    stem = out / keys[t_index] / f"{keys[t_index]}_{i:04d}"
    img.save(stem.with_suffix(".jpg"), quality=quality)
    stem.with_suffix(".json").write_text(json.dumps({"quad": np.round(quad.astype(float), 2).tolist()} | record))


def _init_worker() -> None:
    """One OpenCV thread per worker process: the processes already use every core."""
    cv2.setNumThreads(1)


def make_demo_dataset(out: Path, per_class: int, seed: int, *, flat: bool = False, backgrounds: Sequence[Path] = (),
                      framing: str = "any", workers: int | None = None, progress: bool = True) -> dict:
    """Write ``per_class`` images of every type in ``DOC_TYPES`` to ``out/<type>/<type>_<i>.jpg``,
    each with a ``.json`` holding the document's corners ("quad": top-left first, clockwise) and,
    for a simulated photo, what the capture applied ("capture": ``simulate_capture``'s
    ``conditions``), plus ``out/labels.json`` (folder -> display name).

    Images are simulated photos unless ``flat``, framed as ``framing`` says (``augment.FRAMINGS``:
    by default some partly out of frame). The output depends only on ``seed``, ``per_class`` and
    ``framing``, not on ``workers`` (default: all CPUs). Returns a small summary.
    """
    start = time.perf_counter()
    out = Path(out)
    for key in DOC_TYPES:
        (out / key).mkdir(parents=True, exist_ok=True)
    (out / "labels.json").write_text(json.dumps({k: t.name for k, t in DOC_TYPES.items()}, indent=2) + "\n")
    jobs = [(t, i) for t in range(len(DOC_TYPES)) for i in range(per_class)]
    work = partial(_write_one, out=out, seed=seed, flat=flat, backgrounds=tuple(Path(p) for p in backgrounds),
                   framing=framing)
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    with tqdm(total=len(jobs), unit="img", disable=not progress) as bar:
        if workers == 1:
            threads = cv2.getNumThreads()
            _init_worker()
            try:
                for job in jobs:
                    work(job)
                    bar.update()
            finally:
                cv2.setNumThreads(threads)
        else:
            # spawn, not fork: forked children of a process running other threads (OpenCV's pool,
            # tqdm's monitor, torch) can hang on a lock copied mid-use; seen under pytest.
            with multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
                for _ in pool.imap_unordered(work, jobs, chunksize=4):
                    bar.update()
    return {"images": len(jobs), "classes": len(DOC_TYPES), "seconds": round(time.perf_counter() - start, 2),
            "out": str(out)}
