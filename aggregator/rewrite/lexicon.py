"""The word lists the rewrite reads sentences with, kept as data in one place.

What makes a sentence unfit to quote alone (an opener that continues an argument the reader
has not seen, the outlet speaking for itself, boilerplate), which words take a side or shout
("slams", "fiasco", "amnesty"), which capitalized words are no names, and what a wire dateline
looks like. The modules that decide (``sentences``, ``headline``, ``summary``, ``body``) read
these lists; a word is added here, not in them. The loaded-word lists are counted here only:
:func:`loaded_words` (a named speaker's quotation is never held against the outlet),
:func:`side_taking_words`, and :func:`loadedness`, which adds the two to find the plainest of
several wordings.
"""

from __future__ import annotations

import re

from aggregator.text import word_count

OUTLET_SUFFIX_RE = re.compile(r"\s+(?:[-–—|:]\s+)([^-–—|:]{2,40})$")
DANGLING_START_RE = re.compile(
    r"^(?:But|And|Or|So|Yet|Also|However|Still|Meanwhile|Instead|He|She|It|They|Them|His|Her|"
    r"Its|Their|There|Here|Such|"
    # connectives that continue an argument the reader has not seen ("Finally, any settlement")
    r"Finally|Moreover|Furthermore|Additionally|Likewise|Similarly|Otherwise|Nonetheless|"
    r"Nevertheless|Besides|Thus|Therefore|Hence|Consequently|Indeed|Even so|In addition|"
    r"As a result|In other words|For example|For instance|By contrast|In contrast|"
    r"On the other hand|Worse|Better yet|Specifically|In particular"
    r")\b(?!-)"  # not "Worse-than-expected"
)
# The outlet speaking for itself ("We're still looking into ...", "I was there"): in our story
# "we" would read as balanced-news, so such a sentence is never quoted without its context.
OWN_VOICE_RE = re.compile(r"^(?:We|Our|Us|I|My|Me)\b|\bthis (?:article|story|piece|report)\b")
BOILERPLATE_RE = re.compile(
    r"(?i)\b(?:advertisement|subscribe|sign up|newsletter|click here|read more|all rights "
    r"reserved|follow us|copyright|cookies?)\b|^(?:Watch|Listen|Read|See)\b|"
    r"\((?:video|audio|photos?|watch|listen)\)"  # a pointer to more, not a fact
)
SENSATIONAL_RE = re.compile(
    r"(?i)\b(?:slams?|blasts?|destroys?|shocking|bombshell|outrage\w*|rips?|epic|furious|"
    r"meltdown|chaos|humiliat\w*|brutal|stunning|insane|fiasco|debacle|mess|"
    r"firestorm|scandal\w*|hammers?|torches?|eviscerat\w*|smack\w*|wrecks?|caves in|"
    r"radical|extremist|lies|lying|rammed|amnesty|illegals|illegal aliens?|"
    r"crazy|unhinged|savage\w*|explosive|horrif\w*|terrifying|fumes?|fuming|"
    r"ax(?:e|es|ed)|slash(?:es|ed)?|guts?|gutted|jacks? up|jacked up|hikes?|deception|"
    r"scheme|sky-high|pricey|inferno|blaze|cold water|slap on the wrist|courage|"
    r"assault on|war on|caves?|caved|shreds?|shredded|dumps?|dumped|disgraceful|sham|hoax|"
    r"witch hunt)\b|!"
)
# The strongest of those: words that take a side or shout, in a sentence we would print
# without quotation marks. Each is on the list above too, so it weighs twice in loadedness().
SIDE_TAKING_RE = re.compile(
    r"(?i)\b(?:rammed|slams?|blasts?|rips?|destroys?|illegals|illegal aliens?|amnesty|radical|"
    r"extremist|meltdown|fiasco|debacle|unhinged|insane|crazy|humiliat\w*|bombshell|"
    r"shocking|outrageous|disgraceful|sham|hoax|witch hunt)\b"
)
EXPLAINER_RE = re.compile(r"^(?:What|Why|How|Who|Here's|Here is|Opinion|Analysis)\b")
SCARE_QUOTE_RE = re.compile(r"[\u2018\u201c\"'][^\u2019\u201d\"']{1,40}[\u2019\u201d\"']")
SHOUT_RE = re.compile(r"\b[A-Z]{3,}(?:\s+[A-Z]{2,})+\b")  # "HARBOR BRIDGE FIASCO", not "COVID"
ALWAYS_CAPITAL = frozenset(
    "January February March April May June July August September October November December "
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
)
LOWERABLE = frozenset(
    "a an the in on at for of as after before during while when with by from under over some "
    "many most several officials".split()
)
QUOTED_RE = re.compile(r"[\u201c\"][^\u201c\u201d\"]*[\u201d\"]")
SPEECH_RE = re.compile(
    r"\b(?:said|says|told|asked|added|wrote|writes|according to|stated|argued|argues|"
    r"insisted|warned|declared|explained|noted|recalled|tweeted|posted)\b"
)
IMPERATIVE_RE = re.compile(
    r"^(?:Consider|Imagine|Remember|Look|Think|Ask|Note|Take|Start with|Picture|Recall|Don't|Do)\b"
)
OPENERS = frozenset(
    "after before when while during as despite although though since because if once until "
    "asked speaking later earlier then now yesterday today".split()
)
PRONOUN_RE = re.compile(r"\b(?:he|she|him|her|his)\b")
# "The whistleblower alleged that officials shot down her concerns": a person named by role
# before "he" or "her" is who the pronoun means.
ROLE_RE = re.compile(
    r"(?i)\b(?:president|whistleblower|justice|governor|senator|judge|mayor|official|"
    r"spokes(?:man|woman|person)|minister|secretary|chair(?:man|woman)?|director|leader|"
    r"candidate|man|woman|officer|victim|suspect|lawmaker|congress(?:man|woman)|"
    r"representative|ceo|founder|author|prosecutor|attorney|lawyer)\b"
)
# After a definite noun, words that say which one it is ("the case involving ...", "the goal
# to cut ...", "the end of ..."): such a phrase leans on no earlier sentence.
SELF_DEFINING = frozenset(
    "of to that which who whom whose involving including over against between about for "
    "behind known called named".split()
)
# A main clause opening with one of these names nobody the opening phrase could point to ("In
# his speech, he said ..."): its "his" still needs a sentence before.
CATAPHORA_BLOCKERS = frozenset("he she it they his her its their him them we i".split())
NAME_RE = re.compile(r"(?<=[\s\"\u201c(])[A-Z][a-z]+|^[A-Z][a-z]+\s+[A-Z][a-z]+")
CONTEXT_RE = re.compile(
    r"(?i)^(?:such|another|"
    r"(?:the|two|three|four|five|several|many|some|both) other)\b"  # "Two other members"
    r"|^Neither\b(?!.*\bnor\b)"  # "Neither number is close": which numbers?
    r"|\b(?:as well|either|too)\.$"
)
DEFINITE_RE = re.compile(r"\bthe ([a-z][a-z-]{3,})\b")
# A demonstrative opening a sentence, or behind a short opening phrase ("Sadly, these targets
# ..."): "This bill would ..." names its own noun (which the reader must have read of); "This
# is ...", "That means ..." stand for a whole statement the reader has not seen.
DEMONSTRATIVE_RE = re.compile(
    r"^(?:(This|That|These|Those)|[A-Z][\w'\u2019-]*(?: [\w'\u2019-]+){0,3}, (this|these|those))"
    r"\b(?!-)\s*(?P<rest>.*)",
    re.S,
)
# Words that cannot be a demonstrative's own noun: after "This" or "These" they show it stands
# alone for a statement ("This is", "These include", "That came"): auxiliaries, function words
# and the verbs (and irregular past forms) that follow such a pronoun most.
NOT_A_NOUN = frozenset(
    "is was are were be been being has have had would will could can may might should must "
    "shall does did do don't doesn't didn't isn't wasn't aren't weren't won't can't not also "
    "the a an his her its their our my your this these those he she it they we i you "
    "only just all both alone and or but nor of in on at to for with by as from into about "
    "after before than that which who whom whose what when where while if because so yet now "
    "too then here there it's that's one ones "
    "include come mean make show suggest seem appear lead follow remain help explain "
    "highlight become get take go say add represent reflect range vary stand serve need want "
    "came went took made gave left led set put got said told began saw found held brought "
    "thought won lost ran meant sent spent built kept became fell rose drew grew knew wrote "
    "broke chose struck".split()
)
# Nouns ending in "s" that are not a verb's third person ("This news", "This series"), and
# participles that, before a noun, are adjectives ("This proposed rule").
SINGULAR_S = frozenset("news series species gas lens bus canvas atlas alias".split())
ADJECTIVAL = frozenset(
    "proposed planned expected so-called alleged revised updated reported disputed contested "
    "leaked long-awaited renewed added increased reduced required limited".split()
)
IRREGULAR_PLURALS = frozenset("people men women children police data media criteria".split())
# "This year", "this week's vote": the present, not a thing an earlier sentence introduced.
DEICTIC = frozenset(
    "year week month morning afternoon evening night weekend summer fall autumn spring winter "
    "season time term session decade century day days".split()
)
# "September 12, 2001, was one of them": a part of a group no word before it names.
PART_OF_THEM_RE = re.compile(
    r"\b(?:one|two|three|four|five|some|many|most|all|none|each|any|several|both|few|either|"
    r"neither|half|much|more) of (?:them|these|those)\b",
    re.I,
)
TOKEN_RE = re.compile(r"[A-Za-z][A-Za-z'.\u2019-]*")


def loaded_words(text: str) -> int:
    """How many words from the loaded-word list (sensational or side-taking: "slams",
    "fiasco", "axes", "parents fume", "amnesty") a text carries in the outlet's own voice.

    Not counted: a word that ends a compound ("low-lying islands"), and a word inside a
    quotation of three or more words whose speaker the text names ("... destroy ...," he
    wrote): those are the speaker's words, attributed already. A short quotation ("a
    'hoax'") is a scare quote, the outlet's own choice, and counts.
    """
    spoken = (
        [m.span() for m in QUOTED_RE.finditer(text) if word_count(m.group()) >= 3]
        if names_speaker(text)
        else []
    )
    return sum(
        1
        for m in SENSATIONAL_RE.finditer(text)
        if text[m.start() - 1 : m.start()] != "-"
        and not any(start < m.start() < end for start, end in spoken)
    )


def names_speaker(text: str) -> bool:
    """Whether a speech verb stands outside the text's quotations ("..., he wrote")."""
    return SPEECH_RE.search(QUOTED_RE.sub(" ", text)) is not None


def side_taking_words(text: str) -> int:
    """How many words that take a side or shout ("amnesty", "slams") a text carries, quoted or
    not: what a sentence's centrality loses for them."""
    return len(SIDE_TAKING_RE.findall(text))


def loadedness(text: str) -> int:
    """How loaded a wording is, to choose the plainest of several wordings of one claim: its
    loaded words in the outlet's own voice, and each side-taking word, quoted or not, once
    more."""
    return loaded_words(text) + side_taking_words(text)
