"""Time phrases in Spanish, German, French, Portuguese and Italian, said again in English.

A query's time phrase in one of these languages ("la semana pasada", "vor zwei Tagen", "l'été
dernier", "em março", "due giorni fa") is located by that language's phrase shapes and
rewritten as the English phrase it means ("last week", "2 days ago", "last summer", "in march",
"2 days ago"), which ``time_phrases`` resolves: one resolver, so a phrase means the same span
in every language (ISO weeks, meteorological seasons, the nearest day of a date without a year).

Why not dateparser's own languages: it locates no phrase in a sentence (``search_dates`` guesses
a date in any word and costs milliseconds), and of the phrases themselves it resolves about
half. With the language named, dateparser 1.5 resolves "yesterday", "today", "tomorrow" and
"the day before yesterday" in all five; "last week" in es, de, fr, and in pt and it without an
article; "last month" and "last year" in es, de and fr; "N days ago" with a digit in all, with
a number word in de and fr only; "in March" in es, de, fr and pt. It resolves no "last summer",
no "last Monday" and no "last weekend" in any of them, and its translation tables leave those
words as they are. So the shapes are written here, and dateparser resolves their English.

Only a query holding one of these languages' time words (``WORDS``: a set lookup) reaches the
patterns. Accents are optional: tables and text are compared unaccented and in lower case.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december"]  # fmt: skip
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
SEASONS = ["spring", "summer", "autumn", "winter"]
PERIODS = ["week", "weekend", "month", "year"]
UNITS = ["days", "weeks", "months", "years"]
EDGES = ["before", "after", "since", "until"]


@dataclass(frozen=True)
class Language:
    """One language's time words and shapes, unaccented and in lower case.

    Word lists hold alternatives separated by ``|`` (regex). Shapes are regexes in which
    ``{n}`` is a number and ``{unit}`` a unit. ``words`` are the words that mark a phrase:
    every phrase the shapes match holds one of them, or a year.
    """

    code: str
    months: tuple[str, ...]  # January .. December
    days: tuple[str, ...]  # Monday .. Sunday
    seasons: tuple[str, ...]  # spring, summer, autumn, winter
    periods: tuple[str, ...]  # week, weekend, month, year
    units: tuple[str, ...]  # days, weeks, months, years (each with its singular)
    numbers: dict[str, int]
    fixed: dict[str, str]  # regex -> its English ("ayer": "yesterday")
    last: tuple[str, str]  # "last" before its noun, after it ("(?!)": never)
    next: tuple[str, str]
    this: str  # before its noun
    ago: str  # shapes with {n} and {unit}, |-separated
    ahead: str
    trailing: str  # "the last N days"
    inside: str  # "in" or "during" before a month, a season, a year
    articles: str  # what may precede a phrase (each with its space or apostrophe)
    on_day: str  # what makes a weekday name a day ("el "), or "" if the name alone does
    edges: tuple[str, str, str, str]  # before, after, since, until
    of: str  # between a month or a season and its year
    words: str  # the phrase-marking words


_NEVER = "(?!)"
LANGUAGES = (
    Language(
        "es",
        months=("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre|setiembre",
                "octubre", "noviembre", "diciembre"),
        days=("lunes", "martes", "miercoles", "jueves", "viernes", "sabado", "domingo"),
        seasons=("primavera", "verano", "otono", "invierno"), periods=("semana", "fin de semana", "mes", "ano"),
        units=("dia|dias", "semana|semanas", "mes|meses", "ano|anos"),
        numbers={"un": 1, "una": 1, "uno": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7,
                 "ocho": 8, "nueve": 9, "diez": 10, "once": 11, "doce": 12, "unos": 3, "unas": 3, "un par de": 2},
        fixed={"anteayer|antier|antes de ayer": "the day before yesterday", "ayer por la noche|anoche": "last night",
               "ayer": "yesterday", "esta manana": "this morning", "esta tarde": "this afternoon",
               "esta noche": "tonight", "hoy": "today", "pasado manana": "the day after tomorrow",
               "(?<!la )manana": "tomorrow"},
        last=("pasad[oa]|ultim[oa]", "pasad[oa]"), next=("proxim[oa]", "que viene|proxim[oa]"), this="est[ea]",
        ago="hace {n} {unit}", ahead="dentro de {n} {unit}|en {n} {unit}",
        trailing="(?:los |las )?ultim[oa]s {n} {unit}",
        inside="en|durante", articles="el |la |los |las |del |al ", on_day="el ",
        edges=("antes del?", "despues del?", "desde", "hasta"), of="(?:de |del )?",
        words="ayer anteayer antier anoche hoy manana noche tarde",
    ),
    Language(
        "de",
        months=("januar|janner", "februar|feber", "marz", "april", "mai", "juni", "juli", "august", "september",
                "oktober", "november", "dezember"),
        days=("montag", "dienstag", "mittwoch", "donnerstag", "freitag", "samstag|sonnabend", "sonntag"),
        seasons=("fruhling|fruhjahr", "sommer", "herbst", "winter"), periods=("woche", "wochenende", "monat", "jahr"),
        units=("tag|tage|tagen", "woche|wochen", "monat|monate|monaten", "jahr|jahre|jahren"),
        numbers={"ein": 1, "eine": 1, "einem": 1, "einer": 1, "einen": 1, "zwei": 2, "drei": 3, "vier": 4,
                 "funf": 5, "sechs": 6, "sieben": 7, "acht": 8, "neun": 9, "zehn": 10, "elf": 11, "zwolf": 12,
                 "ein paar": 3, "einigen": 3},
        fixed={"vorgestern": "the day before yesterday", "gestern (?:abend|nacht)|letzte nacht": "last night",
               "gestern": "yesterday", "heute (?:morgen|fruh|vormittag)": "this morning",
               "heute nachmittag": "this afternoon", "heute (?:abend|nacht)": "tonight", "heute": "today",
               "ubermorgen": "the day after tomorrow", "(?<!am )(?<!guten )morgen": "tomorrow"},
        last=("(?:letzte|vergangene|vorige)[nmrs]?", _NEVER), next=("(?:nachste|kommende)[nmrs]?", _NEVER),
        this="diese[nmrs]?", ago="vor {n} {unit}", ahead="in {n} {unit}", trailing="(?:die |den )?letzten {n} {unit}",
        inside="im|in|wahrend", articles="der |die |das |den |dem |am |im |vom |zum ", on_day="am ",
        edges=("vor", "nach", "seit", "bis"), of="(?:von )?",
        words="gestern vorgestern heute morgen ubermorgen nacht wochenende",
    ),
    Language(
        "fr",
        months=("janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout", "septembre", "octobre",
                "novembre", "decembre"),
        days=("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
        seasons=("printemps", "ete", "automne", "hiver"),
        periods=("semaine", "week-end|weekend|fin de semaine", "mois", "an|annee"),
        units=("jour|jours", "semaine|semaines", "mois", "an|ans|annee|annees"),
        numbers={"un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6, "sept": 7, "huit": 8,
                 "neuf": 9, "dix": 10, "onze": 11, "douze": 12, "quelques": 3},
        fixed={"avant[- ]hier": "the day before yesterday", "hier soir|la nuit derniere": "last night",
               "hier": "yesterday", "ce matin": "this morning", "cet apres-midi": "this afternoon",
               "ce soir": "tonight", "aujourd'hui": "today", "apres[- ]demain": "the day after tomorrow",
               "demain": "tomorrow"},
        last=("derniere?", "derniere?|passee?"), next=("prochaine?", "prochaine?"), this="cette|cet|ce",
        ago="il y a {n} {unit}", ahead="dans {n} {unit}", trailing="(?:les |ces )?{n} (?:derniers|dernieres) {unit}",
        inside="en|au|pendant|durant", articles="le |la |les |l'|du |au ", on_day="",
        edges=("avant(?: le| l')?", "apres(?: le| l')?", "depuis(?: le| l')?", "jusqu'(?:a|au|en)"), of="(?:de |d')?",
        words="hier aujourd demain soir matin week weekend dernier derniere",
    ),
    Language(
        "pt",
        months=("janeiro", "fevereiro", "marco", "abril", "maio", "junho", "julho", "agosto", "setembro", "outubro",
                "novembro", "dezembro"),
        days=("segunda-feira|segunda", "terca-feira|terca", "quarta-feira|quarta", "quinta-feira|quinta",
              "sexta-feira|sexta", "sabado", "domingo"),
        seasons=("primavera", "verao", "outono", "inverno"), periods=("semana", "fim de semana", "mes", "ano"),
        units=("dia|dias", "semana|semanas", "mes|meses", "ano|anos"),
        numbers={"um": 1, "uma": 1, "dois": 2, "duas": 2, "tres": 3, "quatro": 4, "cinco": 5, "seis": 6, "sete": 7,
                 "oito": 8, "nove": 9, "dez": 10, "onze": 11, "doze": 12, "alguns": 3, "algumas": 3},
        fixed={"anteontem": "the day before yesterday", "ontem (?:a|de) noite": "last night", "ontem": "yesterday",
               "hoje de manha|esta manha|hoje cedo": "this morning", "esta tarde": "this afternoon",
               "hoje (?:a|de) noite|esta noite": "tonight", "hoje": "today",
               "depois de amanha": "the day after tomorrow", "amanha": "tomorrow"},
        last=("ultim[oa]", "passad[oa]"), next=("proxim[oa]", "que vem|proxim[oa]"), this="(?:n?est)[ea]",
        ago="ha {n} {unit}|faz {n} {unit}|{n} {unit} atras", ahead="daqui a {n} {unit}|em {n} {unit}",
        trailing="(?:os |as |nos |nas )?ultim[oa]s {n} {unit}", inside="em|no|na|durante",
        articles="o |a |os |as |no |na |do |da |nos |nas ", on_day="na |no ",
        edges=("antes d[eoa]", "depois d[eoa]", "desde", "ate"), of="(?:de )?",
        words="ontem anteontem hoje amanha manha noite tarde",
    ),
    Language(
        "it",
        months=("gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre",
                "ottobre", "novembre", "dicembre"),
        days=("lunedi", "martedi", "mercoledi", "giovedi", "venerdi", "sabato", "domenica"),
        seasons=("primavera", "estate", "autunno", "inverno"),
        periods=("settimana", "fine settimana|weekend", "mese", "anno"),
        units=("giorno|giorni", "settimana|settimane", "mese|mesi", "anno|anni"),
        numbers={"un": 1, "uno": 1, "una": 1, "due": 2, "tre": 3, "quattro": 4, "cinque": 5, "sei": 6, "sette": 7,
                 "otto": 8, "nove": 9, "dieci": 10, "undici": 11, "dodici": 12, "qualche": 3, "alcuni": 3},
        fixed={"l'altro ieri|l'altroieri|ieri l'altro": "the day before yesterday", "ieri (?:sera|notte)": "last night",
               "ieri": "yesterday", "stamattina|stamani|questa mattina": "this morning",
               "oggi pomeriggio|questo pomeriggio": "this afternoon", "stasera|stanotte|questa sera": "tonight",
               "oggi": "today", "dopodomani": "the day after tomorrow", "domani": "tomorrow"},
        last=("scors[oa]|ultim[oa]", "scors[oa]|passat[oa]"), next=("prossim[oa]", "prossim[oa]"),
        this="quest[oa]|quest'", ago="{n} {unit} fa", ahead="tra {n} {unit}|fra {n} {unit}",
        trailing="(?:gli |le |negli |nelle )?ultim[ie] {n} {unit}", inside="a|ad|in|nel|nell'|d'|durante",
        articles="il |lo |la |l'|i |gli |le |nel |nella |nell'|al |alla ", on_day="",
        edges=("prima (?:di|del|della|dell')", "dopo(?: il| la| l')?", "dal|dalla|dall'|da", "fino (?:a|al|alla)"),
        of="(?:del |di )?", words="ieri altroieri oggi domani dopodomani stamattina stamani stasera stanotte mattina "
        "sera pomeriggio weekend",
    ),
)  # fmt: skip
# a time word that is also a common word of another language ("hier": German "here") or an
# English name ("Ayer", "Hoy") counts only in a query with no word of those, unless its own
_AMBIGUOUS = {"hier": "fr", "ayer": "es", "hoy": "es"}
_MARKERS = {
    "en": "the what did was is are you my i me how when where which who do does have has",
    "de": "ich ist habe hat der die das und nicht wir was wo wer wann war mit mein meine",
    "fr": "je j est le la les que qu et nous vous mon ma mes ai fait quoi",
    "es": "que el la los las y yo es fue hice mi con por para",
}
_MARKER_WORDS = {code: frozenset(words.split()) for code, words in _MARKERS.items()}
_TOKEN = re.compile(r"[^\W\d_]+")


def plain(text: str) -> str:
    """Lower case, unaccented, typographic apostrophes straightened: as the tables are written."""
    text = text.lower().replace("’", "'")
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _words(lang: Language) -> frozenset[str]:
    """The words marking the language's phrases: its months, days, seasons, units and ``words``."""
    listed = (*lang.months, *lang.days, *lang.seasons, *lang.units)
    found = {w for entry in listed for alt in entry.split("|") for w in re.split(r"[- ]", alt) if len(w) >= 3}
    return frozenset(found | set(lang.words.split()))


def _alt(entries: tuple[str, ...] | list[str]) -> str:
    return "(?:" + "|".join(entries) + ")"


def _named(lang: Language, key: str, kinds: str = "mdsp") -> str:
    """Any month, day, season or period (``kinds``) of the language, each in a group naming it (``b_m3``: April)."""
    lists = {"m": lang.months, "d": lang.days, "s": lang.seasons, "p": lang.periods}
    groups = [(f"{kind}{i}", w) for kind in kinds for i, w in enumerate(lists[kind])]
    return "(?:" + "|".join(f"(?P<{key}_{g}>{w})" for g, w in groups) + ")"


def _counted(shapes: str, lang: Language, key: str) -> str:
    """Shapes of ``{n} {unit}``: a number (digits or a word) and a unit, in groups naming them (``a0_u1``: weeks)."""
    out = []
    for i, shape in enumerate(shapes.split("|")):
        number = f"(?P<{key}{i}_n>" + _alt(sorted(lang.numbers, key=len, reverse=True)) + r"|\d{1,3})"
        unit = "(?:" + "|".join(f"(?P<{key}{i}_u{j}>{u})" for j, u in enumerate(lang.units)) + ")"
        out.append(shape.format(n=number, unit=unit))
    return "|".join(out)


def _pattern(lang: Language) -> re.Pattern[str]:
    """Every phrase shape of the language as one pattern, an optional edge ("before") in front,
    the more specific shapes first; a month, a season or a year alone counts after an edge."""
    art, month = f"(?:{lang.articles})?", _alt(lang.months)
    shapes = {
        "date": rf"{art}(?P<day>\d{{1,2}})(?:\.|er|º|o)? (?:de )?(?P<dm>{month})(?:,? {lang.of}(?P<dy>\d{{4}}))?",
        "dated": rf"{art}(?:(?:{lang.inside}) )?{_named(lang, 'y')},? {lang.of}(?P<ny>\d{{4}})",
        "ago": _counted(lang.ago, lang, "a"),
        "ahead": _counted(lang.ahead, lang, "h"),
        "trailing": _counted(lang.trailing, lang, "t"),
        "after": rf"{art}{_named(lang, 'a')} (?:(?P<ra_last>{lang.last[1]})|(?P<ra_next>{lang.next[1]}))",
        "before": rf"{art}(?:(?P<rb_last>{lang.last[0]})|(?P<rb_next>{lang.next[0]})|(?P<rb_this>{lang.this}))"
                  rf"(?: |(?<='))(?:{art})?{_named(lang, 'b')}",
        "fixed": "|".join(f"(?P<f{i}>{rx})" for i, rx in enumerate(lang.fixed)),
        "inside": rf"(?:{lang.inside})(?: |(?<='))(?:{art})?(?:{_named(lang, 'i')}|(?P<iy>\d{{4}}))",
        "on": rf"(?:{lang.on_day}){_named(lang, 'o', 'd')}",
    }  # fmt: skip
    edge, edged = ("|".join(f"(?P<{k}{i}>{rx})" for i, rx in enumerate(lang.edges)) for k in "ex")
    body = "|".join(f"(?P<{kind}>{rx})" for kind, rx in shapes.items())
    bare = rf"(?P<bare>{month}|{_alt(lang.seasons)}|\d{{4}})"
    gap = "(?: |(?<='))"  # after a word, or straight after an elision ("dall'estate")
    edged_bare = rf"(?<![\w'])(?:{edged}){gap}{art}{bare}(?!\w)"
    return re.compile(rf"(?<![\w'])(?:(?:{edge}){gap}{art})?(?:{body})(?![\w'])|{edged_bare}")


@dataclass(frozen=True)
class Found:
    """A phrase found: its edge ("before", or None), its English, and the words as said."""

    edge: str | None
    english: str
    said: str


def _english_named(m: re.Match[str], key: str) -> str | None:
    """The English of the month, day, season or period matched under ``key`` ("summer")."""
    for name, value in m.groupdict().items():
        if value is not None and name.startswith(key + "_"):
            kind, index = name[len(key) + 1], int(name[len(key) + 2 :])
            return {"m": MONTHS, "d": DAYS, "s": SEASONS, "p": PERIODS}[kind][index]
    return None


def _english_count(m: re.Match[str], lang: Language, key: str) -> str:
    """ "2 days" from a counted shape's number and unit."""
    found = {name: value for name, value in m.groupdict().items() if value is not None and name[:1] == key}
    number = next(value for name, value in found.items() if name.endswith("_n"))
    unit = next(int(name.rsplit("_u", 1)[1]) for name in found if "_u" in name)
    return f"{int(number) if number.isdigit() else lang.numbers[number]} {UNITS[unit]}"


def _english(m: re.Match[str], lang: Language) -> str | None:
    """What the phrase matched says, in English, for ``time_phrases`` to resolve."""
    kind = next(k for k in ("date", "dated", "ago", "ahead", "trailing", "after", "before", "fixed", "inside", "on",
                            "bare") if m.group(k) is not None)  # fmt: skip
    if kind == "date":
        month = MONTHS[next(i for i, w in enumerate(lang.months) if re.fullmatch(w, m.group("dm")))]
        return " ".join(p for p in (m.group("day"), month, m.group("dy")) if p)
    if kind == "dated":
        return f"{_english_named(m, 'y')} {m.group('ny')}"
    if kind in ("ago", "ahead", "trailing"):
        count = _english_count(m, lang, {"ago": "a", "ahead": "h", "trailing": "t"}[kind])
        return {"ago": f"{count} ago", "ahead": f"in {count}", "trailing": f"past {count}"}[kind]
    if kind in ("after", "before"):
        side = kind[0]
        relation = next(r for r in ("last", "next", "this") if m.groupdict().get(f"r{side}_{r}") is not None)
        return f"{relation} {_english_named(m, side)}"
    if kind == "fixed":
        return next(english for i, english in enumerate(lang.fixed.values()) if m.group(f"f{i}") is not None)
    if kind == "inside":
        named = _english_named(m, "i")
        return m.group("iy") if named is None else (f"the {named}" if named in SEASONS else named)
    if kind == "on":
        return f"on {_english_named(m, 'o')}"
    bare = m.group("bare")
    index = next((i for i, w in enumerate(lang.months) if re.fullmatch(w, bare)), None)
    if index is not None:
        return MONTHS[index]
    season = next((SEASONS[i] for i, w in enumerate(lang.seasons) if re.fullmatch(w, bare)), None)
    return season or bare


_BY_CODE = {lang.code: lang for lang in LANGUAGES}


@functools.cache
def _compiled(code: str) -> tuple[Language, re.Pattern[str]]:
    """A language's pattern, compiled the first time a query holds its time words: compiling
    all of them took 40 ms of every process's start, where most queries name no time."""
    return _BY_CODE[code], _pattern(_BY_CODE[code])


WORDS: dict[str, frozenset[str]] = {lang.code: _words(lang) for lang in LANGUAGES}
_YEAR = re.compile(r"\b\d{4}\b")
_YEAR_AFTER = (  # the words a year alone follows in a phrase: "en 2023", "nel 2022", "seit 2020"
    "en em nel im jahr durante wahrend pendant desde seit depuis dal dalla despues depois apres dopo nach antes "
    "avant prima vor hasta ate jusqu fino bis"
)
_BEFORE_YEAR = frozenset(_YEAR_AFTER.split())


def find_phrases(query: str) -> Iterator[Found]:
    """The time phrases of ``query`` in the languages whose time words it holds, leftmost first
    within each language; nothing at all (and no pattern run) for a query with none."""
    text = plain(query)
    tokens = set(_TOKEN.findall(text))
    languages = [code for code, words in WORDS.items() if not words.isdisjoint(tokens)]
    if not languages and not _BEFORE_YEAR.isdisjoint(tokens) and _YEAR.search(text):
        languages = list(WORDS)
    for code in languages:
        lang, pattern = _compiled(code)
        for m in pattern.finditer(text):
            english = _english(m, lang)
            if english is None or _doubtful(m, code, tokens):
                continue
            edge = next((EDGES[i] for i in range(4) if m.group(f"e{i}") or m.group(f"x{i}")), None)
            yield Found(edge, english, m.group(0))


def _doubtful(m: re.Match[str], code: str, tokens: set[str]) -> bool:
    """A word of this language that another language uses otherwise ("hier": German "here"),
    said in a query with words of that other language and none of this one."""
    word = m.group(0).split()[-1]
    if _AMBIGUOUS.get(word) != code:
        return False
    others = any(not words.isdisjoint(tokens) for lang, words in _MARKER_WORDS.items() if lang != code)
    return others and _MARKER_WORDS.get(code, frozenset()).isdisjoint(tokens)


__all__ = ["LANGUAGES", "WORDS", "Found", "Language", "find_phrases", "plain"]
