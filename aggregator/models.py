"""The plain data passed between stages.

Stages share only these types (and :mod:`aggregator.config`, and the words of
:mod:`aggregator.vocab`): a stage never imports another, so each can be tested alone with values
built by hand.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from aggregator.vocab import Side, side_of


@dataclass(frozen=True)
class Validators:
    """What a server told us last time, for a conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchResult:
    """One HTTP fetch: either a body, a "not modified", or an error in one line."""

    url: str
    final_url: str
    status: int | None
    content: bytes = b""
    content_type: str | None = None
    validators: Validators = field(default_factory=Validators)
    not_modified: bool = False
    error: str | None = None
    elapsed: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    moved_to: str | None = None  # where 301/308 redirects (only permanent ones) led

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class FeedEntry:
    """A feed entry, normalized: times in UTC, text fields as given by the feed."""

    key: str  # identity within its source: guid, else link, else a content hash
    link: str | None
    title: str
    author: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    summary: str | None = None
    content: str | None = None
    image: str | None = None
    image_caption: str | None = None  # its media:description or media:title, plain text


@dataclass(frozen=True)
class ParsedFeed:
    """feedparser's view of one document; ``error`` is set when nothing usable came out."""

    title: str | None
    entries: tuple[FeedEntry, ...]
    error: str | None = None
    warning: str | None = None
    ttl_minutes: int | None = None  # RSS <ttl>: the publisher's hint for how often to poll


@dataclass(frozen=True)
class Extracted:
    """What trafilatura found on an article page."""

    text: str
    title: str | None = None
    author: str | None = None
    date: str | None = None
    image: str | None = None
    image_caption: str | None = None  # og:image:alt, else the figcaption or alt of its <img>

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


@dataclass(frozen=True)
class ClusterArticle:
    """An article as the grouping stage sees it."""

    entry_id: int
    source_id: str
    title: str
    text: str
    published: datetime
    kind: str = "news"  # news or opinion
    fetched: datetime | None = None  # breaks ties between equal published times
    side: Side | None = None  # its outlet's side (None when not known)


@dataclass(frozen=True)
class StoryArticle:
    """One source article of a story, as the rewrite stage sees it."""

    entry_id: int
    source_id: str
    source_name: str
    lean: str
    kind: str
    title: str
    link: str | None
    published: datetime
    text: str
    text_available: bool = True
    fetched: datetime | None = None  # breaks ties for the first reporter
    # (name, lean, link, title) of each copy of it: the title is the copy's own headline
    via: tuple[tuple[str, str, str | None, str], ...] = ()
    image: str | None = None  # its feed's media or enclosure, else its page's og:image
    side_join: bool = False  # joined by the side-completion search, below the join threshold
    owner: str = ""  # who owns its outlet ("News Corp"), from the source's config; "" unknown
    # (name, owner) of each copy (``via``) whose outlet's owner is known
    via_owners: tuple[tuple[str, str], ...] = ()
    image_caption: str | None = None  # that picture's own caption, plain text


@dataclass(frozen=True)
class LeadImage:
    """The picture a story leads with: one of its articles' own, shown by its address only
    (never fetched or stored by us), credited to that article's outlet."""

    url: str
    credit: str  # the outlet whose article it is
    alt: str  # the article's own caption, else its title


# (entry id, index): which sentence of which article; :attr:`Sentence.key`.
SentenceKey = tuple[int, int]


@dataclass(frozen=True)
class Sentence:
    """A sentence taken verbatim from a source: the provenance travels with the words."""

    text: str
    entry_id: int
    index: int  # position of the sentence in its article's text
    source_id: str
    source_name: str
    link: str | None
    attributed: str = ""  # in prose ("According to X, ..."): worded by publish.prose, or a model
    opens_lower: bool = False  # behind a lead-in, its first word takes a small letter
    according_to: tuple[str, ...] = ()  # a summary claim only these outlets report
    cites: tuple[int, ...] = ()  # a model-written paragraph: every entry id it draws on
    # A claim several articles state: (outlet, title, link) of every article stating it, this
    # sentence's own first; the sentence is shown once and cites them all.
    reported_by: tuple[tuple[str, str, str | None], ...] = ()

    @property
    def key(self) -> SentenceKey:
        """Which sentence this is, as the rewrite looks sentences up: its article's entry id
        and its place in that article's text."""
        return (self.entry_id, self.index)


@dataclass(frozen=True)
class Coverage:
    """Who covered a story: outlets by lean, and who was first."""

    first_source: str  # outlet name
    first_published: datetime
    outlets: tuple[tuple[str, str, str | None], ...]  # (name, lean, link)
    leans: tuple[str, ...]  # distinct leans, in spectrum order
    # Outlets that republished a copy of one of the articles (syndicated wire text): they
    # carried the story, so they count for their side, but the original gets the credit.
    via: tuple[tuple[str, str, str | None], ...] = ()
    # Every article, in reporting order: (outlet, lean, link, title, kind); the source list
    # shows each one the feed entry links, an outlet's two articles told apart by their titles,
    # and "how each side headlined it" each one's own headline (an opinion piece marked).
    articles: tuple[tuple[str, str, str | None, str, str], ...] = ()
    # Every copy (name, lean, link, title), one outlet's two copies both: the feed links each.
    copies: tuple[tuple[str, str, str | None, str], ...] = ()
    # (outlet, owner) of every listed outlet whose owner is known, in the order listed.
    owners: tuple[tuple[str, str], ...] = ()

    def count(self, side: Side) -> int:
        """Outlets covering the story on one side (left, the centre or right), copies too."""
        carried = {(name, lean) for name, lean, _ in self.outlets + self.via}
        return sum(1 for _, lean in carried if side_of(lean) == side)


@dataclass(frozen=True)
class CoverageNote:
    """What the reader is told of a side the story's firmly joined articles do not reach, as a
    code that publishing words (``publish.story.note_text``): ``no_coverage`` (the looser
    search found nothing of that side's), ``related_angle`` (it found this article, not joined
    to the story: its outlet, its own headline, its link) or ``side_join`` (it found this
    article and joined it, on a weaker match than the rest: the reader is told which)."""

    code: str  # "no_coverage" | "related_angle" | "side_join"
    side: Side  # left or right
    outlet: str = ""
    title: str = ""
    link: str | None = None
    published: datetime | None = None


@dataclass(frozen=True)
class Rewrite:
    """The balanced story as data: neutral headline and summary, attributed body, perspectives.

    A perspective is a tuple of sentences, or empty with ``*_missing`` saying why (a code,
    :class:`~aggregator.vocab.Empty`, that publishing words), as it does the summary ("").
    """

    headline: str
    summary: str
    body: tuple[Sentence, ...]
    progressive: tuple[Sentence, ...]
    conservative: tuple[Sentence, ...]
    common_ground: tuple[Sentence, ...]
    progressive_missing: str | None = None
    conservative_missing: str | None = None
    common_ground_missing: str | None = None
    unavailable: tuple[str, ...] = ()  # outlets whose text could not be read
    summary_sentences: tuple[Sentence, ...] = ()  # the summary, sentence by sentence, sourced
    method: str = "extractive"  # or "model"
    fallback: str | None = None  # why the model's rewrite was not used, when it was not
    notes: tuple[CoverageNote, ...] = ()  # one per side no article of the story comes from


@dataclass(frozen=True)
class RelatedLink:
    url: str
    outlet: str
    lean: str
    owner: str = ""  # who owns the outlet; "" when not known


@dataclass(frozen=True)
class StorylineEvent:
    """Another event of a story's storyline, as its feed entry names it."""

    id: str
    headline: str
    published: datetime


@dataclass(frozen=True)
class PublishedStory:
    """A story ready for output: its rewrite and coverage as stored, which publishing renders
    into ``content_html`` (or, for a story stored by a version before 0008 and not rewritten
    since, the HTML that version rendered, as stored)."""

    id: str
    headline: str
    summary: str
    content_html: str
    published: datetime
    updated: datetime
    leans: tuple[str, ...]
    related: tuple[RelatedLink, ...]
    storyline_id: str = ""  # the storyline's id (its first story's id); "" when alone
    earlier: tuple[StorylineEvent, ...] = ()  # the storyline's earlier events, oldest first
    later: tuple[StorylineEvent, ...] = ()  # and its later ones
    notes: tuple[CoverageNote, ...] = ()  # the sides it has no article of (``Rewrite.notes``)
    image: LeadImage | None = None
    rewrite: Rewrite | None = None  # None: stored before 0008 and not rewritten since
    coverage: Coverage | None = None
    content_hash: str | None = None  # of what readers were last shown (``updated`` moves with it)


@dataclass(frozen=True)
class RetiredStory:
    """A story folded into an older one: its feed entry is withdrawn with a tombstone (RFC 6721)
    and its page points to the story it is now part of."""

    id: str
    merged_into: str
    headline: str  # of the story it is now part of
    when: datetime


@dataclass(frozen=True)
class SourceStatus:
    """A source that is failing, for the status notice."""

    name: str
    since: datetime
    error: str


@dataclass(frozen=True)
class SourceState:
    """A source's polling state and health as the store keeps it (``sources`` lists them)."""

    id: str
    status: str  # new, ok, failing, parked
    last_poll_at: datetime | None = None
    last_http_status: int | None = None
    mean_response_ms: float | None = None
    last_error: str | None = None
    failing_since: datetime | None = None
    last_new_entry_at: datetime | None = None
    next_poll_at: datetime | None = None
    entries: int = 0  # stored entries of the source
    consecutive_errors: int = 0
    retry_until: datetime | None = None  # the server's Retry-After


@dataclass(frozen=True)
class LastPoll:
    """A source's latest poll (of one of its feeds), for /status."""

    started: datetime
    outcome: str  # new, unchanged, not-modified, error
    http_status: int | None
    error: str | None
    new_entries: int
    seconds: float


@dataclass(frozen=True)
class ExtractFailures:
    """How many of a source's stored entries got no text from their page, and the latest why."""

    count: int
    last_error: str


@dataclass(frozen=True)
class StageEvent:
    """One run of a stage: when it ended and how long it took (the history behind /status)."""

    stage: str
    at: datetime
    seconds: float


@dataclass(frozen=True)
class WorkerBeat:
    """A worker registered in the task queue, its heartbeat and the tasks it runs now."""

    id: int
    last_heartbeat: datetime
    running: tuple[str, ...]


@dataclass(frozen=True)
class QueueDepth:
    """The queue's tasks of one name: waiting, running, and how long the oldest has waited."""

    task: str
    waiting: int
    running: int
    oldest_wait_seconds: float | None


@dataclass(frozen=True)
class QueueState:
    """The workers' task queue as /status shows it (PostgreSQL only)."""

    workers: tuple[WorkerBeat, ...]
    depth: tuple[QueueDepth, ...]


@dataclass(frozen=True)
class StageRun:
    """How long a stage took: its last run, and its total over ``runs`` runs (for /metrics)."""

    last_at: datetime
    last_seconds: float
    total_seconds: float
    runs: int


@dataclass(frozen=True)
class Health:
    """The service's health as /healthz reports it; ``problems`` empty means healthy."""

    last_publish: datetime | None
    publish_age: float | None  # seconds
    failing: list[SourceStatus]
    problems: list[str]


@dataclass(frozen=True)
class Metrics:
    """Counters and timings for /metrics."""

    polls: dict[str, int]  # by outcome
    entries: int
    stories: int
    stages: dict[str, tuple[float, float, int, datetime]]  # last s, total s, runs, last run
    failing_sources: int
    sources: int


# --- what the store hands the group, rewrite and extract stages -------------------------------


@dataclass(frozen=True)
class StoredEntry:
    """An entry as the store holds it, without its feed text (only what grouping and rewriting
    read: a day's history of them is in memory at once)."""

    id: int
    source_id: str
    key: str
    link: str | None
    title: str
    published: datetime
    fetched: datetime
    text: str | None  # the article text (None: not extracted yet)
    text_available: bool
    extract_error: str | None
    story_id: str | None
    copy_of: int | None
    image: str | None = None  # its feed's media or enclosure, else its page's og:image
    side_join: bool = False  # joined by the side-completion search (``EntryGrouped``)
    image_caption: str | None = None  # that picture's own caption, plain text


@dataclass(frozen=True)
class FeedText:
    """An entry's own text from its feed: what its article text falls back to."""

    title: str
    summary: str | None
    content: str | None


@dataclass(frozen=True)
class ArticleText:
    """What extraction found for one entry, as the store records it."""

    text: str
    error: str | None
    available: bool  # False: paywalled or cut short, the story says so
    image: str | None = None  # the page's og:image (kept only where the feed gave none)
    image_caption: str | None = None  # its caption on the page (``Extracted.image_caption``)


@dataclass(frozen=True)
class PendingPage:
    """An entry waiting for its article text."""

    entry_id: int
    source_id: str
    link: str | None


# The grouping's decisions, in the order they were taken; the store records them in one
# transaction (`StoreType.record_grouping`).


@dataclass(frozen=True)
class StoryOpened:
    story_id: str
    published: datetime
    storyline: str  # the storyline's first story, or "" for a storyline of its own


@dataclass(frozen=True)
class EntryGrouped:
    entry_id: int
    story_id: str
    copy_of: int | None
    published: datetime  # widens the story's span
    # Joined below the join threshold by the side-completion search (``cluster.index``):
    # what the story page and the JSON Feed tell the reader (``related.coverage_notes``).
    side_join: bool = False


@dataclass(frozen=True)
class StoryMerged:
    retired: str
    kept: str


@dataclass(frozen=True)
class EntryRelated:
    """An entry the grouping compared with a story it did not join, probable enough to be
    coverage of a related angle (``related.RELATED``)."""

    entry_id: int
    story_id: str
    score: float


GroupStep = StoryOpened | EntryGrouped | StoryMerged | EntryRelated

# The database's grouping, summed up: grouped entries (count, highest id) and retired stories.
# Anything else that groups, merges or prunes changes it.
GroupingMark = tuple[int, int | None, int]


@dataclass(frozen=True)
class Pruned:
    """What a retention prune removed, and the grouping around it (for a kept story index)."""

    entries: int
    mark_before: GroupingMark | None = None  # None: not asked for
    grouped_gone: int = 0  # grouped entries removed
    grouped_inside: int = 0  # ... of them published since the given history start
    highest_grouped: int | None = None  # after the prune


@dataclass(frozen=True)
class Attribution:
    """Who reported a story first and who covered it, as its row records them."""

    first_source_id: str
    outlets: tuple[tuple[str | None, str, str, str | None], ...]  # (id, name, lean, via)
    count_left: int
    count_center: int
    count_right: int
    blindspot: bool


@dataclass(frozen=True)
class StoryRewrite:
    """A story's rewrite as stored: the data publishing renders, and what it was made from."""

    input_hash: str | None  # None: the model should be tried again
    rewrite: Rewrite
    coverage: Coverage
    leans: tuple[str, ...]
    related: tuple[RelatedLink, ...]
    attribution: Attribution
    image: LeadImage | None = None


@dataclass(frozen=True)
class RewriteInputs:
    """What a story's rewrite is made from, as stored."""

    input_hash: str | None
    rewritten: bool
    entries: tuple[StoredEntry, ...]  # in ENTRY_ORDER
    # Stored before 0008 (no coverage): its stored rewrite, to be kept with its coverage added.
    legacy: Rewrite | None = None


@dataclass(frozen=True)
class FeedState:
    """What we remember of a feed for its next poll."""

    fetch_url: str  # the configured URL, or where it moved permanently
    validators: Validators
    body_hash: str | None


@dataclass(frozen=True)
class PollWait:
    """What decides whether a manual poll must leave a source alone (see ``polling.waiting``),
    and how long its answers usually take (how patient a cycle is with it)."""

    status: str
    consecutive_errors: int
    next_poll_at: datetime | None
    retry_until: datetime | None
    mean_response_ms: float | None = None


@dataclass(frozen=True)
class FeedPoll:
    """One feed's poll, as the store records it."""

    url: str  # the configured URL (the feed's key)
    started: datetime
    seconds: float
    http_status: int | None
    outcome: str  # error, not-modified, unchanged; a parsed one's is new or unchanged once stored
    error: str | None = None
    # A document parsed without error: its entries and their idents (link and title hashed),
    # to store; None when nothing was parsed.
    entries: tuple[FeedEntry, ...] | None = None
    idents: tuple[str | None, ...] = ()
    validators: Validators = field(default_factory=Validators)
    body_hash: str | None = None
    moved_to: str | None = None  # a permanent redirect's target


@dataclass(frozen=True)
class SourcePoll:
    """One source's poll: its feeds, and the source's error line and shown HTTP status."""

    source_id: str
    feeds: tuple[FeedPoll, ...]
    error: str | None  # every feed's error in one line; None when all went well
    http_status: int | None  # the first failed feed's, else the last feed's


@dataclass(frozen=True)
class PollStored:
    """What recording a source's poll came to."""

    new_entries: tuple[int, ...]  # per feed, in order
    status: str  # the source's status after the poll
    moved: tuple[tuple[str, str], ...] = ()  # (feed, new address) of feeds that moved now
