"""What a reader of the published entries trips on (issue 22), counted the way the hidden
replay's findings count it, from the published Atom entries alone.

``bench/replay.py`` reads each entry (:class:`Page`) and prints, per run:

- ``opinion headlines``: entries headed by an opinion piece's own title while the entry links
  a news article on the story;
- ``cut sentences``: summary, body and view sentences that end at an abbreviation ("the Sep",
  "Gov.") or (summary and views, which quote sentences whole) open in lower case, mid-sentence;
- ``summary provenance``: summary sentences found word for word (case and punctuation aside)
  in one of the entry's linked articles, once "..., according to X." is taken off;
- ``sentence twice``: entries that show one sentence twice across the summary, the body, the
  views and Common Ground (a sentence of eight words or more inside another counts: the body
  words its lead-ins around a source's sentence);
- ``headlines shown``: entries that show every linked article's own headline;
- ``images``: entries with a lead image, of those linking an article whose page carries one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from lxml import etree, html

from aggregator.text import comparable, split_sentences

MEDIA = "{http://search.yahoo.com/mrss/}"
# Abbreviations no sentence ends at: months (not May) and titles before a name.
_ABBREVIATION = re.compile(
    r"\b(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|Gov|Sen|Sens|Rep|Reps|Rev|Gen|"
    r"Lt|Col|Sgt|Capt|Cmdr|Adm|Dr|Mr|Mrs|Ms|Prof|Ft|Mt|Supt|Atty)\.?$"
)
_ACCORDING_TO = re.compile(r",? according to [^.]+\.$")  # "..., according to X."
_LED_BY = "According to "  # "According to X, ..." (X may hold commas: "A, B and C")
SOFT_HYPHEN = "\xad"  # no letter ("Vladi\xadmir"): extraction drops it, as a reader sees it
TWICE_WORDS = 8  # a shorter sentence inside another is a phrase, not a sentence shown twice


@dataclass
class Page:
    """What one entry shows a reader, beside its linked articles (``Entry.links``)."""

    title: str = ""
    summary: list[str] = field(default_factory=list)  # the summary's sentences
    body: list[str] = field(default_factory=list)  # the body's sentences, lead-ins and all
    views: list[str] = field(default_factory=list)  # the views' and Common Ground's sentences
    headlines: dict[str, str] = field(default_factory=dict)  # href -> the headline shown
    image: bool = False


def read_page(entry: etree._Element, atom: str) -> Page:
    """The parts of one published Atom entry that a reader reads."""
    page = Page(
        title=(entry.findtext(f"{atom}title") or "").strip(),
        summary=split_sentences(entry.findtext(f"{atom}summary") or ""),
        image=entry.find(f"{MEDIA}thumbnail") is not None,
    )
    content = entry.findtext(f"{atom}content") or ""
    if not content.strip():
        return page
    tree = html.fragment_fromstring(content, create_parent="div")
    for cite in tree.iterfind(".//cite"):
        cite.drop_tree()  # a view's "(Outlet)" is not part of its sentence
    for part, xpath in (
        # the sources' sentences: a paragraph with a class is ours (a note on coverage)
        (page.body, ".//div[@class='story-body']//p[not(@class)]"),
        (page.views, ".//div[@class='perspectives']//p[not(@class)]"),
    ):
        for p in tree.xpath(xpath):
            part += split_sentences(" ".join(" ".join(p.itertext()).split()))
    for item in tree.iterfind(".//div[@class='by-side']//li"):
        for a in item.iterfind("a"):
            page.headlines[a.get("href", "")] = (a.text_content() or "").strip('\u201c\u201d" ')
    return page


def _readings(sentence: str) -> list[str]:
    """The source's sentence inside a summary sentence, without its attribution and closing
    punctuation: one reading, or one per comma where "According to X, " opens it."""
    if sentence.startswith(_LED_BY):
        parts = sentence.split(", ")
        return [_bare(", ".join(parts[i:])) for i in range(1, len(parts))] or [sentence]
    return [_bare(sentence)]


def _bare(sentence: str) -> str:
    """A sentence without a closing attribution and its closing punctuation."""
    return _ACCORDING_TO.sub("", sentence).rstrip(".\"'\u201d\u2019 ")


def cut_sentences(page: Page) -> list[str]:
    """The sentences that end at an abbreviation, or that a quoting section opens mid-way."""
    cut = [s for s in [*page.summary, *page.body, *page.views] if _ABBREVIATION.search(_bare(s))]
    quoted = [*page.summary, *page.views]
    cut += [s for s in quoted if s.lstrip("\"'\u201c\u2018")[:1].islower() and s[:1] != "i"]
    return cut


def shown_twice(page: Page) -> bool:
    """Whether the entry shows one sentence twice (or one inside another) in its sections."""
    seen = [comparable(_readings(s)[0]) for s in page.summary]
    seen += [comparable(_bare(s)) for s in [*page.body, *page.views]]
    seen = [s for s in seen if s]
    for i, a in enumerate(seen):
        for b in seen[i + 1 :]:
            short, long = sorted((a, b), key=len)
            if short == long or (len(short.split()) >= TWICE_WORDS and f" {short} " in f" {long} "):
                return True
    return False


def traced(page: Page, texts: Iterable[str]) -> tuple[int, int]:
    """How many of the summary's sentences are found in one of ``texts``, and of how many."""
    sources = [f" {comparable(t.replace(SOFT_HYPHEN, ''))} " for t in texts]
    found = sum(
        any(f" {comparable(r)} " in t for r in _readings(s) for t in sources) for s in page.summary
    )
    return found, len(page.summary)


@dataclass
class Article:
    """What the checks need of a linked article."""

    title: str
    text: str
    kind: str  # news or opinion
    image: bool  # whether its page carries a picture


def reader_figures(pages: list[tuple[Page, list[Article]]]) -> dict[str, str]:
    """The figures of issue 22 over every entry (its page and its linked articles)."""
    opinion_heads = cut = twice = shown = with_image = could = found = total = 0
    for page, linked in pages:
        head = comparable(page.title)
        heading = [a for a in linked if head and head in comparable(a.title)]
        if any(a.kind == "opinion" for a in heading) and any(a.kind == "news" for a in linked):
            opinion_heads += not any(a.kind == "news" for a in heading)
        cut += len(cut_sentences(page))
        twice += shown_twice(page)
        titles = {comparable(t) for t in page.headlines.values()}
        shown += all(comparable(a.title) in titles for a in linked)
        f, n = traced(page, (a.text for a in linked))
        found, total = found + f, total + n
        if any(a.image for a in linked):
            could += 1
            with_image += page.image
    n = len(pages)
    return {
        "opinion headlines": str(opinion_heads),
        "cut sentences": str(cut),
        "summary provenance": f"{found}/{total}" + (f" ({found / total:.1%})" if total else ""),
        "sentence twice": f"{twice} of {n} entries",
        "headlines shown": f"{shown} of {n} entries",
        "images": f"{with_image} of {could} entries whose articles' pages carry one",
    }


def linked_articles(
    links: Iterable[str], article_of: Mapping[str, int], articles: Mapping[int, Article]
) -> list[Article]:
    """The entry's linked articles that the replay served (a link to anything else is left)."""
    return [articles[article_of[h]] for h in links if h in article_of]
