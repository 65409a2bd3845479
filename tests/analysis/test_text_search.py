"""Text search without a language model: words -> configured centres -> nearest samples."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from lsx.analysis.clusters import RULE_CONFIGURED, AttributeSpace, ClusterSpace
from lsx.analysis.text_search import (
    QueryError,
    build_vocabulary,
    parse_query,
    text_search,
)
from lsx.data.vocabulary import BUILTIN

PATTERNS = ("solid", "stripes", "checks")
COLOURS = ("red", "blue")


def space() -> ClusterSpace:
    """Pattern in columns 0-1 (3 centres), colour in column 2 (2 centres)."""
    pattern = AttributeSpace(
        "pattern", PATTERNS, 0, 2, np.array([[1.0, 0], [0, 1.0], [-1.0, -1.0]]),
        np.full(3, 0.3), np.ones(3, bool),
    )  # fmt: skip
    colour = AttributeSpace(
        "colour", COLOURS, 2, 3, np.array([[1.0], [-1.0]]), np.full(2, 0.3), np.ones(2, bool)
    )
    return ClusterSpace(RULE_CONFIGURED, (pattern, colour))


@pytest.fixture
def db() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """60 points: (pattern, colour) labels and latents near the matching centres."""
    rng = np.random.default_rng(0)
    p, c = rng.integers(0, 3, 60), rng.integers(0, 2, 60)
    sp = space()
    z = np.hstack([sp.attributes[0].centers[p], sp.attributes[1].centers[c]])
    return z + rng.normal(0, 0.1, z.shape), p, c


def test_words_map_to_centres_case_insensitively_across_attributes():
    vocab = build_vocabulary(space())
    assert parse_query("red stripes", vocab) == {0: 1, 1: 0}
    assert parse_query("  STRIPES,   Red! ", vocab) == {0: 1, 1: 0}
    assert parse_query("checks", vocab) == {0: 2}
    assert parse_query("show me blue images with a colour", vocab) == {1: 1}  # filler words


def test_combined_query_ranks_by_distance_over_the_named_sub_spaces(db):
    z, p, c = db
    res = text_search(space(), z, "red stripes", build_vocabulary(space()), k=5)
    target = np.array([[0.0, 1.0, 1.0]])  # stripes centre ++ red centre
    expected = np.argsort(cdist(z, target)[:, 0])[:5]
    np.testing.assert_array_equal(res.ids, expected)
    assert res.query == {"pattern": "stripes", "colour": "red"}
    assert all(p[res.ids] == 1)
    assert all(c[res.ids] == 0)
    inside = (np.linalg.norm(z[:, :2] - [0.0, 1.0], axis=1) <= 0.3) & (np.abs(z[:, 2] - 1) <= 0.3)
    assert res.n_inside == int(inside.sum())
    assert res.n_inside >= int(((p == 1) & (c == 0)).sum()) - 1  # noise 0.1 vs radius 0.3
    single = text_search(space(), z, "blue", build_vocabulary(space()), k=60)
    assert set(single.ids[: int((c == 1).sum())]) == set(np.flatnonzero(c == 1))


def test_synonyms_from_a_vocabulary():
    vocab = build_vocabulary(
        space(), {"striped": "stripes", "navy": "colour:blue", "zig zag": "checks"}
    )
    assert parse_query("navy striped", vocab) == {0: 1, 1: 1}
    assert parse_query("zig zag", vocab) == {0: 2}  # a two-word phrase
    assert "synonyms: navy, striped, zig zag" in vocab.listing()
    with pytest.raises(QueryError, match=r"The synonym 'teal' points at 'cyan', which is no class"):
        build_vocabulary(space(), {"teal": "cyan"})


def test_unknown_words_list_the_vocabulary():
    vocab = build_vocabulary(space())
    msg = r"Unknown word\(s\) 'tartan'\. .*Vocabulary: pattern: solid, stripes, checks; colour: red"
    with pytest.raises(QueryError, match=msg):
        parse_query("red tartan", vocab)


def test_contradictory_and_empty_queries():
    vocab = build_vocabulary(space())
    with pytest.raises(QueryError, match=r"contradictory: 'red' and 'blue' are both colour values"):
        parse_query("red blue stripes", vocab)
    with pytest.raises(QueryError, match=r"Type a query made of class names"):
        parse_query("   ", vocab)
    with pytest.raises(QueryError, match=r"The query names no class"):
        parse_query("the with a", vocab)
    with pytest.raises(QueryError, match=r"keep it under 300"):
        parse_query("red " * 100, vocab)


def test_builtin_vocabularies_resolve_against_their_datasets():
    digits = AttributeSpace(
        "digit", tuple("0123456789"), 0, 10, np.eye(10), np.full(10, 0.3), np.ones(10, bool)
    )
    vocab = build_vocabulary(ClusterSpace(RULE_CONFIGURED, (digits,)), BUILTIN["digits"])
    assert parse_query("three", vocab) == {0: 3}
    assert parse_query("digit 7", vocab) == {0: 7}  # the attribute name is filler
    from lsx.data.synthetic import COLOURS as TEX_COLOURS
    from lsx.data.synthetic import PATTERNS as TEX_PATTERNS

    eye, ones, on = np.eye(6), np.ones(6), np.ones(6, bool)
    tex = ClusterSpace(
        RULE_CONFIGURED,
        (
            AttributeSpace("pattern", TEX_PATTERNS, 0, 6, eye, ones, on),
            AttributeSpace("colour", tuple(TEX_COLOURS), 6, 12, eye, ones, on),
        ),
    )
    vocab = build_vocabulary(tex, BUILTIN["textures"])  # every synonym names a real class
    assert parse_query("crimson striped", vocab) == {0: 1, 1: 0}
    assert parse_query("Polka dotted", vocab) == {0: 3}
