"""The offline extractor: first-person statements in user messages, read by patterns.

Cheap enough for every add (microseconds a message) and predictable: it only claims what a
pattern matched, in English. "I'm allergic to peanuts" said by Alice becomes the fact
"Alice is allergic to peanuts"; "I moved to Berlin" fills the single-valued ``residence``
slot, so reconciliation supersedes "Alice lives in Paris"; "I no longer live in Paris" is
a retraction. Anything else stays an episode — nothing is lost, it is just not distilled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from ..models import Message, Usage
from .models import Candidate, DerivedKind

_VALUE = r"(?P<v>[^,.;!?]+?)"
_END = r"\s*(?=$|[,.;!?]| (?:but|because|since|so|and then|which|who|where)\b)"
_NAME = r"(?P<v>(?-i:[A-Z][\w'-]+)(?: (?-i:[A-Z][\w'-]+))?)"
_TRAILING = re.compile(r"\s+(?:now|these days|too|as well|right now|anymore|any more|again|lately)$", re.I)
_WHEN = re.compile(
    r"\s+(?:(?:last|this|next) (?:week|month|year|summer|winter|spring|fall|autumn|weekend)|yesterday|today|"
    r"recently|a (?:few|couple of) \w+ ago|(?:\w+ )?(?:days?|weeks?|months?|years?) ago|in \d{4}|"
    r"in (?:january|february|march|april|may|june|july|august|september|october|november|december))$",
    re.IGNORECASE,
)
_OCCUPATIONS = (
    "engineer|developer|teacher|nurse|doctor|designer|student|manager|lawyer|writer|artist|chef|scientist|"
    "consultant|accountant|programmer|researcher|musician|photographer|architect|pilot|farmer|mechanic|"
    "pharmacist|dentist|therapist|counsell?or|journalist|analyst|professor|firefighter|police officer|"
    "electrician|plumber|carpenter|veterinarian|vet|paramedic|librarian|translator|entrepreneur|freelancer"
)
_CONTRACTIONS = [
    (r"\bI'm\b", "I am"), (r"\bI've\b", "I have"), (r"\bI'd\b", "I would"), (r"\bI'll\b", "I will"),
    (r"\bdon't\b", "do not"), (r"\bcan't\b", "cannot"), (r"\bwon't\b", "will not"), (r"\bdoesn't\b", "does not"),
    (r"\bi\b", "I"), (r"’", "'"),
]  # fmt: skip


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    kind: DerivedKind
    template: str  # {S}: the subject; {v}: the captured value; other groups by name
    slot: str | None = None  # a single-valued attribute, "{rel}"-style fields allowed
    retraction: bool = False


def _rule(regex: str, kind: DerivedKind, template: str, slot: str | None = None, *, retraction: bool = False) -> Rule:
    open_value = _VALUE in regex or _NAME in regex  # a closed word list ends at its word boundary
    return Rule(re.compile(regex + (_END if open_value else ""), re.IGNORECASE), kind, template, slot, retraction)


# "Always there for you", "never had a chance": a description, not an instruction
_NOT_IMPERATIVE = (
    r"(?:am|is|are|was|were|be|been|being|had|has|have|did|does|knew|thought|felt|got|seen|there|here|so|too|"
    r"such|very|really|a|an|the|this|that|my|your|his|her|our|their|with|in|on|at|for|down|up|fun|easy|"
    r"good|great|nice|happy|glad|ready|like)\b"
)
# what a liked thing cannot be: a pronoun or a clause about the listener ("I love it", "I love
# your cake", "I love when you...") says nothing about the speaker worth keeping
_EMPTY_VALUE = re.compile(
    r"^(?:(?:that|this|them|those|these|to|so|too|all|everything|one|much)(?: \w+)?|.*\byour?\b.*|"
    r"(?:it|is|are|was|were|when|how|what|where|why|if|seeing|hearing|the thought)\b.*)$",
    re.IGNORECASE,
)

_SINGLE_RELATIONS = "wife|husband|partner|boyfriend|girlfriend|fiancée?|mother|mom|mum|father|dad|boss"
_RELATIONS = _SINGLE_RELATIONS + "|daughter|son|brother|sister|dog|cat|best friend|friend|grandmother|grandfather"

RULES: list[Rule] = [
    # where they live, come from, work
    _rule(r"\bI (?:have )?(?:just |recently |finally )?(?:moved|relocated) (?:to|into) " + _VALUE,
          "fact", "{S} lives in {v}", "residence"),
    _rule(r"\bI (?:live|am living|am based|reside|am staying) in " + _VALUE, "fact", "{S} lives in {v}", "residence"),
    _rule(r"\bI (?:do not|no longer) live in " + _VALUE, "fact", "{S} lives in {v}", "residence", retraction=True),
    _rule(r"\bI moved (?:out of|away from) " + _VALUE, "fact", "{S} lives in {v}", "residence", retraction=True),
    _rule(r"\bI am (?:originally )?from " + _VALUE, "fact", "{S} is from {v}", "origin"),
    _rule(r"\bI work as (?P<a>an? )?" + _VALUE, "fact", "{S} works as {a}{v}", "occupation"),
    _rule(r"\bI am (?:now )?(?:working as )?(?P<a>an? )(?P<v>(?:[\w-]+ )?(?:" + _OCCUPATIONS + r"))\b",
          "fact", "{S} works as {a}{v}", "occupation"),
    _rule(r"\bmy (?:job|profession|occupation) is (?P<a>an? )?" + _VALUE, "fact", "{S} works as {a}{v}", "occupation"),
    _rule(r"\bI (?:work|am working) (?:at|for) " + _VALUE, "fact", "{S} works at {v}", "employer"),
    _rule(r"\bI (?:just )?(?:started|got) a (?:new )?job (?:at|with) " + _VALUE,
          "fact", "{S} works at {v}", "employer"),
    _rule(r"\bI (?:no longer|do not) work (?:at|for) " + _VALUE, "fact", "{S} works at {v}", "employer",
          retraction=True),
    _rule(r"\bI (?:study|am studying|major in|am majoring in) " + _VALUE, "fact", "{S} studies {v}", "studies"),
    # health and diet
    _rule(r"\bI am (?:severely |very |mildly )?allergic to " + _VALUE, "fact", "{S} is allergic to {v}"),
    _rule(r"\bI have an? (?P<v>[\w-]+(?: [\w-]+)?) allergy", "fact", "{S} is allergic to {v}"),
    _rule(r"\bI am (?:no longer|not) allergic to " + _VALUE, "fact", "{S} is allergic to {v}", retraction=True),
    _rule(r"\bI am (?:a |now a |now )?(?P<v>vegetarian|vegan|pescatarian|pescetarian|gluten[- ]free"
          r"|lactose[- ]intolerant|keto|kosher|halal|diabetic)\b", "preference", "{S} is {v}", "diet"),
    _rule(r"\bI (?:went|became|have become|turned) (?P<v>vegetarian|vegan|pescatarian|keto)\b",
          "preference", "{S} is {v}", "diet"),
    _rule(r"\bI am (?:no longer|not) (?:a )?(?P<v>vegetarian|vegan|pescatarian|keto)\b", "preference", "{S} is {v}",
          "diet", retraction=True),
    _rule(r"\bI (?:do not|never|cannot|can not) eat " + _VALUE, "preference", "{S} does not eat {v}"),
    # likes and dislikes
    _rule(r"\bI (?:really |absolutely |just |also )?(?P<verb>love|like|enjoy|adore|prefer) " + _VALUE,
          "preference", "{S} {verb}s {v}"),
    _rule(r"\bI (?:really |absolutely )?(?:hate|dislike|cannot stand|do not like|do not enjoy) " + _VALUE,
          "preference", "{S} dislikes {v}"),
    _rule(r"\bmy (?:all[- ]time )?favou?rite (?P<k>[\w-]+(?: [\w-]+)?) (?:is|are) " + _VALUE,
          "preference", "{S}'s favorite {k} is {v}", "favorite {k}"),
    # people and pets
    _rule(r"\bmy (?P<rel>" + _RELATIONS + r")(?:'s name is| is called| is named|,| named| called) " + _NAME,
          "fact", "{S}'s {rel} is named {v}", "{rel} name"),
    _rule(r"\bI have an? (?P<rel>" + _RELATIONS + r") (?:named|called) " + _NAME, "fact", "{S}'s {rel} is named {v}",
          "{rel} name"),
    _rule(r"\bmy name is " + _NAME, "fact", "{S}'s name is {v}", "name"),
    _rule(r"\b(?:please )?call me " + _NAME, "preference", "{S} wants to be called {v}", "preferred name"),
    _rule(r"\bI have (?P<v>(?:a|an|one|two|three|four|five|\d+) (?:[\w-]+ ){0,2}(?:dogs?|cats?|kids|children"
          r"|daughters?|sons?|sisters?|brothers?|grandchildren|pets?))", "fact", "{S} has {v}"),
    _rule(r"\bI am (?:now |happily )?(?P<v>married|single|divorced|engaged|widowed|separated)\b",
          "fact", "{S} is {v}", "marital status"),
    _rule(r"\bI (?:just )?got (?P<v>married|divorced|engaged)\b", "fact", "{S} is {v}", "marital status"),
    # other facts
    _rule(r"\bI am (?P<v>\d{1,3}) (?:years old|years of age|yo)\b", "fact", "{S} is {v} years old", "age"),
    _rule(r"\bI just turned (?P<v>\d{1,3})\b", "fact", "{S} is {v} years old", "age"),
    _rule(r"\bmy birthday is (?:on )?" + _VALUE, "fact", "{S}'s birthday is {v}", "birthday"),
    _rule(r"\bI (?:can )?speak " + _VALUE, "fact", "{S} speaks {v}"),
    _rule(r"\bI am (?:currently )?learning " + _VALUE, "fact", "{S} is learning {v}"),
    _rule(r"\bI am (?:currently )?training for " + _VALUE, "fact", "{S} is training for {v}"),
    _rule(r"\bI (?:drive|own) an? " + _VALUE, "fact", "{S} owns a {v}"),
    _rule(r"\bI play (?:the )?" + _VALUE, "fact", "{S} plays {v}"),
    # tasks and plans
    _rule(r"\b(?:please )?remind me to " + _VALUE, "task", "{S} wants a reminder to {v}"),
    _rule(r"\bI (?:need|have|must|should) to " + _VALUE, "task", "{S} needs to {v}"),
    _rule(r"\bI am (?:planning|going|hoping) to " + _VALUE, "task", "{S} plans to {v}"),
    _rule(r"\bI plan to " + _VALUE, "task", "{S} plans to {v}"),
    # standing instructions for the agent: an imperative that opens its clause
    _rule(r"^\s*(?:please )?(?P<how>always|never) (?!" + _NOT_IMPERATIVE + r"|\w+(?:ing|[^s]s)\b)" + _VALUE,
          "procedure", "{how_cap} {v}"),
]  # fmt: skip

_ANY_RULE = re.compile(r"\b(?:I|I'\w+|my|me|always|never)\b", re.IGNORECASE)  # every rule needs one
_FIRST_PERSON = re.compile(r"^\s*(?:I|my|please|call me|remind me)\b", re.IGNORECASE)
_LEAD = re.compile(r"^\s*(I am|I)\b", re.IGNORECASE)


def _clauses(text: str) -> list[str]:
    """Sentences split on 'and'/'but', a continuation taking the lead ('I am') of the one before.

    "I'm vegetarian and allergic to peanuts" gives "I am vegetarian", "I am allergic to
    peanuts"; a piece that reads as nothing alone ("I love hiking and swimming") stays joined.
    """
    for pattern, repl in _CONTRACTIONS:
        text = re.sub(pattern, repl, text)
    out: list[str] = []
    for sentence in re.split(r"(?<=[.!?;])\s+|\n+", text):
        pieces = re.split(r",? (?:and|but) ", sentence.strip())
        clauses = [pieces[0]]
        for piece in pieces[1:]:
            lead = _LEAD.match(clauses[-1])
            candidate = piece if _FIRST_PERSON.match(piece) or lead is None else f"{lead.group(1)} {piece}"
            if _FIRST_PERSON.match(piece) or any(r.pattern.search(candidate) for r in RULES):
                clauses.append(candidate)
            else:
                clauses[-1] = f"{clauses[-1]} and {piece}"
        out.extend(c for c in clauses if c)
    return out


def _clean(value: str, *, timeless: bool) -> str:
    """Drop filler and, for facts, a trailing time phrase ("moved to Berlin last month")."""
    value = value.strip().strip("\"'")
    while True:
        trimmed = _TRAILING.sub("", value)
        if timeless:
            trimmed = _WHEN.sub("", trimmed)
        if trimmed == value:
            return value
        value = trimmed


_PRONOUNS = {"my": "their", "me": "them", "myself": "themselves", "mine": "theirs", "i": "they"}
_PRONOUNS_FOR_AGENT = {
    "my": "the user's",
    "me": "the user",
    "myself": "the user",
    "mine": "the user's",
    "i": "the user",
}


def _third_person(value: str, table: dict[str, str]) -> str:
    """'renew my passport' → 'renew their passport': the memory speaks about its subject."""
    return re.sub(r"\b(my|me|myself|mine|I)\b", lambda m: table[m.group(1).lower()], value)


def _fill(rule: Rule, match: re.Match[str], subject: str) -> tuple[str, str | None] | None:
    groups = {k: (v or "") for k, v in match.groupdict().items()}
    value = _clean(groups.get("v", ""), timeless=rule.kind in ("fact", "preference"))
    if rule.kind == "preference" and _EMPTY_VALUE.match(value):
        return None
    value = _third_person(value, _PRONOUNS_FOR_AGENT if rule.kind == "procedure" else _PRONOUNS)
    if not value or len(value.split()) > 8:
        return None
    verb = groups.get("verb", "").lower()
    fields = {
        **groups,
        "v": value,
        "S": subject,
        "verb": verb,
        "rel": groups.get("rel", "").lower(),
        "k": groups.get("k", "").lower(),
        "a": groups.get("a", "").lower(),
        "how_cap": groups.get("how", "").capitalize(),
    }
    text = rule.template.format(**fields)
    text = text[0].upper() + text[1:]
    slot = rule.slot.format(**fields) if rule.slot else None
    if fields["rel"] and not re.fullmatch(_SINGLE_RELATIONS, fields["rel"]):
        slot = None  # a second daughter does not replace the first
    return text, slot


class RuleExtractor:
    """``extract`` reads user messages only: an assistant's words are not facts about the user."""

    name = "rules"
    blocking = False
    reconciler = None  # extraction.reconcile's rules decide
    merger = None  # consolidation keeps a group's most complete member

    def extract(
        self, messages: list[Message], *, reference: datetime, procedure: bool = False
    ) -> tuple[list[Candidate], Usage]:
        candidates: list[Candidate] = []
        for index, message in enumerate(messages):
            if message.role != "user":
                continue
            if not _ANY_RULE.search(message.content):
                continue  # most messages: skip the patterns altogether
            subject = message.name or "The user"
            for clause in _clauses(message.content):
                candidates.extend(self._match(clause, subject, index, message.timestamp))
        if procedure:
            candidates = [c for c in candidates if c.kind == "procedure"]
        return candidates, Usage()

    def _match(self, clause: str, subject: str, index: int, when: datetime | None) -> list[Candidate]:
        found: list[Candidate] = []
        taken: list[tuple[int, int]] = []
        for rule in RULES:
            for match in rule.pattern.finditer(clause):
                if any(start < match.end() and match.start() < end for start, end in taken):
                    continue  # an earlier, more specific rule already read this stretch
                filled = _fill(rule, match, subject)
                if filled is None:
                    continue
                taken.append(match.span())
                text, slot = filled
                found.append(
                    Candidate(text=text, kind=rule.kind, subject=subject, slot=slot, occurred_at=when,
                              sources=[index], retraction=rule.retraction)
                )  # fmt: skip
        return found
