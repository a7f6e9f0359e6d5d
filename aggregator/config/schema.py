"""What a run is configured with: the typed, frozen values :mod:`aggregator.config.load` builds
from ``sources.toml``, with their defaults, and the vocabulary they use (leans, kinds)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

LEANS: tuple[str, ...] = ("left", "lean-left", "center", "lean-right", "right")
LEFT_LEANS = frozenset({"left", "lean-left"})
RIGHT_LEANS = frozenset({"right", "lean-right"})
KINDS: tuple[str, ...] = ("news", "opinion")

DEFAULT_SOURCES = "sources.toml"
DEFAULT_DB = "sqlite:///storage/balanced-news.db"
DEFAULT_OUT = "feeds"


@dataclass(frozen=True)
class Source:
    """One outlet (or one section of an outlet) as configured in ``sources.toml``."""

    id: str
    name: str
    homepage: str
    feeds: tuple[str, ...]
    lean: str
    kind: str = "news"
    rated_by: str = ""
    # Who owns the outlet ("News Corp"), set only where that is well known and stable, and
    # where that comes from (owner_source), as rated_by says where the lean comes from. ""
    # when unknown: an outlet of unknown owner counts as an owner of its own.
    owner: str = ""
    owner_source: str = ""
    interval: int | None = None  # minutes; None means the default
    full_text: bool = True
    enabled: bool = True
    # Content rules, for a site trafilatura gets wrong (see aggregator/extract.py): the CSS
    # selector of the article body, and selectors of what to remove before extracting.
    select: str | None = None
    strip: tuple[str, ...] = ()

    @property
    def side(self) -> str:
        """``left``, ``right`` or ``center``: the side of the spectrum the lean falls on."""
        if self.lean in LEFT_LEANS:
            return "left"
        if self.lean in RIGHT_LEANS:
            return "right"
        return "center"


@dataclass(frozen=True)
class Settings:
    """The ``[settings]`` table, with defaults a new operator can live with."""

    feed_size: int = 50
    retention_days: int = 0
    title: str = "Balanced News"
    subtitle: str = "Clear, contextual news from across the spectrum"
    site_url: str = "http://localhost:8000/"
    default_interval: int = 30  # minutes
    timeout: float = 20.0  # seconds, connect and read
    max_feed_bytes: int = 10_000_000
    max_page_bytes: int = 5_000_000
    max_redirects: int = 5
    headlines: int = 5  # entries in the latest-headlines list
    concurrency: int = 32  # feed requests in flight at once
    per_host: int = 2  # requests in flight to one host: never hammer a publisher
    total_timeout: float = 60.0  # seconds for a whole request, so a trickling server is cut off
    max_entries: int = 200  # entries processed per feed document
    parse_timeout: float = 30.0  # seconds one feed document may take to parse
    min_interval: int = 5  # minutes: the adaptive interval's floor
    max_interval: int = 1440  # minutes: its ceiling, and the cap on error backoff
    park_after_days: int = 3  # a source failing this long is parked (shown, retried daily)
    page_delay: float = 1.0  # seconds between article-page requests to one host
    hub: str = ""  # WebSub hub URL; empty: no hub
    stale_after: int = 180  # minutes since the last publish before /healthz reports unhealthy
    images: bool = True  # each story's lead image (by its address) in the feeds and pages
    # Seconds in the minute that polling intervals (interval, default_interval, min_interval,
    # max_interval) are counted in: 60, except in tests and trial runs that cannot wait.
    minute_seconds: int = 60

    def minutes(self, n: float) -> timedelta:
        """``n`` polling minutes (see ``minute_seconds``)."""
        return timedelta(seconds=n * self.minute_seconds)


@dataclass(frozen=True)
class ModelSettings:
    """The ``[model]`` table: an optional OpenAI-compatible chat-completions backend.

    Off by default: the extractive rewrite needs no model and no network. ``api_key_env`` is the
    *name* of the environment variable holding the key; ``api_key`` is its value, read here.
    """

    enabled: bool = False
    base_url: str = "http://127.0.0.1:11434/v1"  # Ollama's; llama.cpp, vLLM or a hosted API
    model: str = ""
    api_key_env: str = ""
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 60.0  # seconds per request
    max_tokens: int = 1200
    concurrency: int = 2  # requests in flight at once
    budget: int = 20  # model requests per cycle; the other stories stay extractive this cycle
    temperature: float = 0.0


@dataclass(frozen=True)
class RewriteSettings:
    """The ``[rewrite]`` table."""

    summary_words: int = 60


@dataclass(frozen=True)
class GroupingSettings:
    """The ``[grouping]`` table.

    ``embeddings``: weigh sentence embeddings (all-MiniLM-L6-v2, on the CPU) beside the words
    when deciding which story an article joins. Off by default: it needs the embeddings extra
    (``pip install -e '.[embeddings]'``: torch, about 1.5 GB), and costs ~50 s of CPU per 1,000
    articles; on the neus-grouping val/test stories it raised pairwise F1 by ~0.025.
    """

    embeddings: bool = False


@dataclass(frozen=True)
class WorkerSettings:
    """The ``[workers]`` table: ``balanced-news worker`` on PostgreSQL (aggregator/workers).

    ``lease_seconds``: how long a claimed source is held for the worker polling it; a worker
    that dies mid-poll leaves it claimed this long, then another takes it. ``stalled_seconds``:
    a worker whose heartbeat (every ``heartbeat_seconds``) is older is taken for dead, and its
    running tasks are released. ``keep_jobs``: keep finished jobs in procrastinate's tables
    (to inspect them); by default successful ones are deleted.
    """

    concurrency: int = 16  # tasks one worker runs at once
    # Sources per poll task. 1: one task per source under a per-source queueing lock; more:
    # polled together (one fetcher, with its per-host limit; batched writes), far less
    # overhead per source. Either way a source's claim token keeps it from a second poll.
    batch: int = 20
    lease_seconds: int = 120
    dispatch_seconds: int = 10  # how often due sources are claimed (1-59)
    heartbeat_seconds: int = 10
    stalled_seconds: int = 30
    keep_jobs: bool = False
    # PostgreSQL connections one worker holds at most: QUEUE_CONNECTIONS for procrastinate
    # (its listener and its queries), the rest for the pipeline's tasks.
    pool_size: int = 5


# Of a worker's pool_size: procrastinate's (one for its LISTEN, one for its queries).
QUEUE_CONNECTIONS = 2


@dataclass(frozen=True)
class Config:
    """Everything one run needs: sources, settings and where things live."""

    sources: tuple[Source, ...]
    settings: Settings = field(default_factory=Settings)
    sources_path: Path = Path(DEFAULT_SOURCES)
    db_url: str = DEFAULT_DB
    out_dir: Path = Path(DEFAULT_OUT)
    allow_private_hosts: bool = False
    rewrite: RewriteSettings = field(default_factory=RewriteSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    grouping: GroupingSettings = field(default_factory=GroupingSettings)
    workers: WorkerSettings = field(default_factory=WorkerSettings)
    # ``serve``'s /status answers other than loopback clients only to a request sending it.
    status_token: str | None = field(default=None, repr=False)

    def source(self, source_id: str) -> Source:
        for src in self.sources:
            if src.id == source_id:
                return src
        raise KeyError(source_id)

    @property
    def enabled_sources(self) -> tuple[Source, ...]:
        return tuple(s for s in self.sources if s.enabled)
