"""Time phrases in Spanish, German, French, Portuguese and Italian resolve to the ranges their
English does, against a fixed reference date; English is read as before; a search in one of
these languages favours what happened then, on both stores."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from engramdb import Memory
from engramdb.retrieval.temporal import find_time_range
from engramdb.retrieval.time_languages import LANGUAGES, WORDS, find_phrases

REF = datetime(2024, 5, 15, 12, tzinfo=timezone.utc)  # a Wednesday


def day(year: int, month: int, d: int) -> datetime:
    return datetime(year, month, d, tzinfo=timezone.utc)


SPANS = {  # what each phrase means on REF, as in English
    "last week": (day(2024, 5, 6), day(2024, 5, 13)),
    "yesterday": (day(2024, 5, 14), day(2024, 5, 15)),
    "in March": (day(2024, 3, 1), day(2024, 4, 1)),
    "two days ago": (day(2024, 5, 13), day(2024, 5, 14)),
    "last summer": (day(2023, 6, 1), day(2023, 9, 1)),
    "last Monday": (day(2024, 5, 13), day(2024, 5, 14)),
    "last weekend": (day(2024, 5, 11), day(2024, 5, 13)),
    "the day before yesterday": (day(2024, 5, 13), day(2024, 5, 14)),
    "next week": (day(2024, 5, 20), day(2024, 5, 27)),
    "this year": (day(2024, 1, 1), day(2025, 1, 1)),
    "on 3 May 2023": (day(2023, 5, 3), day(2023, 5, 4)),
    "before March": (None, day(2024, 3, 1)),
    "since last summer": (day(2023, 6, 1), None),
    "the last three days": (day(2024, 5, 12), day(2024, 5, 16)),
    "in two weeks": (day(2024, 5, 27), day(2024, 6, 3)),
}
SAID = {  # language -> the same phrases, in a sentence as a user asks
    "es": ["¿Qué hice la semana pasada?", "¿Qué comí ayer?", "¿Qué pasó en marzo?", "¿Qué me dijo hace dos días?",
           "¿Adónde fuimos el verano pasado?", "¿Qué hice el lunes pasado?", "el fin de semana pasado", "anteayer",
           "¿Qué tengo la próxima semana?", "¿Qué he leído este año?", "el 3 de mayo de 2023", "antes de marzo",
           "desde el verano pasado", "en los últimos tres días", "dentro de dos semanas"],
    "de": ["Was habe ich letzte Woche gemacht?", "Was habe ich gestern gegessen?", "Was war im März?",
           "Was hat sie vor zwei Tagen gesagt?", "Wohin sind wir letzten Sommer gefahren?", "letzten Montag",
           "Was war letztes Wochenende?", "vorgestern", "Was habe ich nächste Woche vor?", "dieses Jahr",
           "am 3. Mai 2023", "vor März", "seit letztem Sommer", "in den letzten drei Tagen", "in zwei Wochen"],
    "fr": ["Qu'ai-je fait la semaine dernière ?", "Qu'est-ce que j'ai mangé hier ?", "Que s'est-il passé en mars ?",
           "Qu'a-t-elle dit il y a deux jours ?", "Où sommes-nous allés l'été dernier ?", "lundi dernier",
           "le week-end dernier", "avant-hier", "la semaine prochaine", "cette année", "le 3 mai 2023",
           "avant mars", "depuis l'été dernier", "les trois derniers jours", "dans deux semaines"],
    "pt": ["O que fiz na semana passada?", "O que comi ontem?", "O que aconteceu em março?",
           "O que ela disse há dois dias?", "Aonde fomos no verão passado?", "na segunda-feira passada",
           "no fim de semana passado", "anteontem", "na próxima semana", "este ano", "3 de maio de 2023",
           "antes de março", "desde o verão passado", "nos últimos três dias", "daqui a duas semanas"],
    "it": ["Cosa ho fatto la settimana scorsa?", "Cosa ho mangiato ieri?", "Cosa è successo a marzo?",
           "Cosa ha detto due giorni fa?", "Dove siamo andati l'estate scorsa?", "lunedì scorso",
           "il fine settimana scorso", "l'altro ieri", "la prossima settimana", "quest'anno", "il 3 maggio 2023",
           "prima di marzo", "dall'estate scorsa", "negli ultimi tre giorni", "tra due settimane"],
}  # fmt: skip
CASES = [(query, *SPANS[meaning]) for phrases in SAID.values() for query, meaning in zip(phrases, SPANS, strict=True)]


@pytest.mark.parametrize(("query", "start", "end"), CASES)
def test_time_phrases_resolve_in_five_languages(query: str, start: datetime | None, end: datetime | None) -> None:
    found = find_time_range(query, REF)
    assert found is not None and (found.start, found.end) == (start, end), found


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ("la proxima semana", *SPANS["next week"]),  # accents are optional
        ("LETZTE WOCHE", *SPANS["last week"]),
        ("hace 2 dias", *SPANS["two days ago"]),  # digits as well as number words
        ("vor einer Woche", *SPANS["last week"]),
        ("hace un par de días", *SPANS["two days ago"]),
        ("nel 2022", day(2022, 1, 1), day(2023, 1, 1)),  # a year after a preposition
        ("im Sommer 2022", day(2022, 6, 1), day(2022, 9, 1)),
        ("el mes que viene", day(2024, 6, 1), day(2024, 7, 1)),
        ("¿Qué hice el domingo?", day(2024, 5, 12), day(2024, 5, 13)),  # a weekday named: the last one
        ("o que fiz ontem à noite?", day(2024, 5, 14), day(2024, 5, 15)),
    ],
)
def test_variants_of_the_phrases(query: str, start: datetime | None, end: datetime | None) -> None:
    found = find_time_range(query, REF)
    assert found is not None and (found.start, found.end) == (start, end), found


def test_days_are_the_reference_dates_own_in_every_language() -> None:
    evening = datetime(2024, 5, 15, 20, tzinfo=timezone(-timedelta(hours=8)))  # 04:00 UTC on the 16th
    found = find_time_range("¿qué hice hoy?", evening)  # the Californian 15th, in UTC
    assert found is not None and (found.start, found.end) == (
        datetime(2024, 5, 15, 8, tzinfo=timezone.utc),
        datetime(2024, 5, 16, 8, tzinfo=timezone.utc),
    )


@pytest.mark.parametrize(
    "query",
    [
        "Was habe ich hier gekauft?",  # German "here", not French "yesterday"
        "What did Ayer write about ethics?",  # an English name
        "What did Chris Hoy win?",
        "life on mars",
        "¿Qué hago por la mañana?",  # "in the morning", not "tomorrow"
        "what is the 2024 budget",  # a year with no phrase around it
        "de la semaine",
        "una semana",
    ],
)
def test_words_that_only_look_like_time_confine_nothing(query: str) -> None:
    assert find_time_range(query, REF) is None


def test_english_comes_first_and_is_read_as_before() -> None:
    found = find_time_range("what did we do last week, la semana pasada?", REF)
    assert found is not None and found.expression == "last week"
    for query, meaning in [("what did I eat yesterday", "yesterday"), ("in March", "in March"),
                           ("what did we do last summer?", "last summer")]:  # fmt: skip
        found = find_time_range(query, REF)
        assert found is not None and (found.start, found.end) == SPANS[meaning]


def test_every_phrase_holds_a_word_of_its_language() -> None:
    """The set lookup that spares the patterns lets every phrase through (or its year)."""
    for lang in LANGUAGES:
        for query in SAID[lang.code]:
            assert any(f.english for f in find_phrases(query)), query
        assert {"ayer", "gestern", "hier", "ontem", "ieri"} & WORDS[lang.code]


def test_a_query_in_spanish_favours_what_happened_then(memory: Memory) -> None:
    for when, text in [(day(2023, 7, 20), "Cruzamos los Alpes a pie, tres refugios en una semana"),
                       (day(2023, 1, 15), "Fuimos a esquiar a los Alpes con los niños"),
                       (day(2022, 7, 10), "Navegamos por la costa, sin Alpes esta vez")]:  # fmt: skip
        memory.add([{"role": "user", "name": "Ana", "content": text, "timestamp": when}], user_id="ana")
    hits = memory.search("¿Qué hizo Ana en los Alpes el verano pasado?", user_id="ana", reference_date=day(2023, 10, 2))
    assert hits.results[0].memory.startswith("Cruzamos los Alpes")
    winter = memory.search(  # German words against Spanish memories: none in common, so the ranking itself
        "Was hat Ana im Januar in den Alpen gemacht?", user_id="ana", reference_date=day(2023, 10, 2), threshold=0
    )
    assert winter.results[0].memory.startswith("Fuimos a esquiar")


def test_random_phrases_in_every_language_never_raise() -> None:
    import random

    rng = random.Random(20)
    vocabulary = [w for words in WORDS.values() for w in words] + [
        "hace", "vor", "il y a", "fa", "há", "dentro de", "tra", "pasado", "letzten", "dernier", "passada", "scorsa",
        "próximo", "el", "la", "l'", "de", "3", "12", "999", "2023", "9999", "0", "un par de", "quelques", "zwei",
        "antes de", "desde", "seit", "jusqu'à", "fino al", "¿", "?", "'", "-",
    ]  # fmt: skip
    for _ in range(3000):
        phrase = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 6)))
        found = find_time_range(phrase, REF)
        assert found is None or found.start is not None or found.end is not None


def test_a_languages_pattern_is_compiled_only_when_a_query_holds_its_words() -> None:
    """Compiling every language's pattern took 40 ms of each process's start; a fresh process
    compiles none until a query holds a language's time words, then only the languages whose
    words it holds ("semana" is Spanish and Portuguese)."""
    import subprocess
    import sys

    child = (
        "from engramdb.retrieval import time_languages as t\n"
        "print(t._compiled.cache_info().currsize)\n"
        "list(t.find_phrases('what did I do in the morning?'))\n"
        "print(t._compiled.cache_info().currsize)\n"
        "print(len(list(t.find_phrases('que hice la semana pasada'))), t._compiled.cache_info().currsize)\n"
    )
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True).stdout.split()
    assert out[:3] == ["0", "0", "1"] and 1 <= int(out[3]) <= 2 < len(LANGUAGES)
