"""Text search without a language model (docs/methods.md ``text_query_point``).

Because a configured latent space fixes in advance where every class lives, a query made of class
and attribute-value names maps by table lookup to centres: ``"red stripes"`` is the ``red`` centre
of the colour sub-space together with the ``stripes`` centre of the pattern sub-space. The search
ranks database points by their distance to that target over the named sub-spaces only (the
sub-spaces are disjoint, so combining attributes is concatenating centres, not averaging them).

Words are matched case-insensitively against the class names, then against an optional synonym
vocabulary (``{"striped": "stripes", "crimson": "colour:red"}``); small filler words ("a", "with",
"and", ...) are ignored. Unknown words and contradictory ones (two classes of one attribute) are a
:class:`QueryError` whose message lists the vocabulary. Pure: no I/O (vocabulary files are read by
:func:`lsx.data.vocabulary.read_vocabulary`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from lsx.analysis.clusters import ClusterSpace
from lsx.errors import LsxError

STOP_WORDS = frozenset(
    "a an the with and in of on or to for me show find images image pictures picture some any "
    "color colour colored coloured pattern patterned "
    "please like that this".split()
)
MAX_NGRAM = 3
MAX_QUERY_CHARS = 300


class QueryError(LsxError, ValueError):
    """A text query uses unknown words, contradicts itself, or names nothing."""


def normalise(text: str) -> str:
    """Lower case, words joined by single spaces, punctuation dropped."""
    return " ".join(re.findall(r"[0-9a-z]+", text.lower()))


@dataclass(frozen=True)
class Vocabulary:
    """Phrase -> (attribute index, class index), plus a readable listing for messages."""

    terms: Mapping[str, tuple[int, int]]
    attributes: tuple[str, ...]
    class_names: tuple[tuple[str, ...], ...]

    def ignorable(self, word: str) -> bool:
        """Filler words and attribute names ("digit 3", "colour red") carry no class."""
        return word in STOP_WORDS or word in {normalise(a) for a in self.attributes}

    def listing(self) -> str:
        """``pattern: solid, stripes, ...; colour: red, ...`` plus synonyms."""
        parts = [
            f"{attr}: {', '.join(names)}"
            for attr, names in zip(self.attributes, self.class_names, strict=True)
        ]
        official = {normalise(n) for names in self.class_names for n in names}
        extra = sorted(t for t in self.terms if t not in official)
        if extra:
            parts.append(f"synonyms: {', '.join(extra)}")
        return "; ".join(parts)


def build_vocabulary(space: ClusterSpace, synonyms: Mapping[str, str] | None = None) -> Vocabulary:
    """The query vocabulary of a cluster space: class names plus synonyms.

    Parameters
    ----------
    space : ClusterSpace
    synonyms : mapping phrase -> target, or None
        A target is a class name (``"stripes"``) or ``"attribute:class"`` when the class name
        occurs in several attributes.

    Raises
    ------
    QueryError
        A synonym's target is no class, or is ambiguous.
    """
    terms: dict[str, tuple[int, int]] = {}
    ambiguous: set[str] = set()
    for a, attr in enumerate(space.attributes):
        for c, name in enumerate(attr.class_names):
            key = normalise(name)
            if key in terms and terms[key] != (a, c):
                ambiguous.add(key)
            terms[key] = (a, c)
    official = dict(terms)
    for phrase, target in (synonyms or {}).items():
        key = normalise(str(phrase))
        if not key:
            continue
        if ":" in str(target):
            attr_name, cls = (normalise(s) for s in str(target).split(":", 1))
            hit = [
                (a, c)
                for a, attr in enumerate(space.attributes)
                if normalise(attr.name) == attr_name
                for c, name in enumerate(attr.class_names)
                if normalise(name) == cls
            ]
        else:
            tnorm = normalise(str(target))
            hit = [official[tnorm]] if tnorm in official and tnorm not in ambiguous else []
        if len(hit) != 1:
            raise QueryError(
                f"The synonym {phrase!r} points at {target!r}, which is no class of this "
                f"checkpoint (or names classes of several attributes; write 'attribute:class'). "
                f"Classes: {Vocabulary(official, _names(space)[0], _names(space)[1]).listing()}."
            )
        terms[key] = hit[0]
    attrs, names = _names(space)
    return Vocabulary(terms, attrs, names)


def _names(space: ClusterSpace) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    return tuple(a.name for a in space.attributes), tuple(a.class_names for a in space.attributes)


def parse_query(text: str, vocab: Vocabulary) -> dict[int, int]:
    """Attribute index -> class index named by ``text`` (longest phrases matched first).

    Raises
    ------
    QueryError
        Empty or too long query, unknown words, or two classes of one attribute.
    """
    if not isinstance(text, str) or not text.strip():
        raise QueryError(f"Type a query made of class names. Vocabulary: {vocab.listing()}.")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"The query has {len(text)} characters; keep it under {MAX_QUERY_CHARS}.")
    words = normalise(text).split()
    found: dict[int, tuple[int, str]] = {}
    unknown: list[str] = []
    i = 0
    while i < len(words):
        for n in range(min(MAX_NGRAM, len(words) - i), 0, -1):
            phrase = " ".join(words[i : i + n])
            if phrase in vocab.terms:
                a, c = vocab.terms[phrase]
                if a in found and found[a][0] != c:
                    other = vocab.class_names[a][found[a][0]]
                    raise QueryError(
                        f"The query is contradictory: {found[a][1]!r} and {phrase!r} are both "
                        f"{vocab.attributes[a]} values ({other} vs {vocab.class_names[a][c]}); "
                        f"a sample has one {vocab.attributes[a]}. Keep one of them."
                    )
                found[a] = (c, phrase)
                i += n
                break
        else:
            if not vocab.ignorable(words[i]):
                unknown.append(words[i])
            i += 1
    if unknown:
        raise QueryError(
            f"Unknown word(s) {', '.join(repr(w) for w in unknown)}. This checkpoint knows only "
            f"its class names (no language model). Vocabulary: {vocab.listing()}."
        )
    if not found:
        raise QueryError(f"The query names no class. Vocabulary: {vocab.listing()}.")
    return {a: c for a, (c, _) in sorted(found.items())}


@dataclass(frozen=True, eq=False)
class SearchResult:
    """The parsed query and the nearest database points to its target."""

    query: dict[str, str]  # attribute -> class name
    ids: np.ndarray  # (k,) database row indices, nearest first
    distances: np.ndarray  # (k,) over the named sub-spaces
    inside: np.ndarray  # (k,) bool: inside every named sphere
    n_inside: int  # database points inside every named sphere
    rule: str

    @property
    def description(self) -> str:
        return " + ".join(f"{a} = {c}" for a, c in self.query.items())


def text_search(
    space: ClusterSpace, z_db: np.ndarray, text: str, vocab: Vocabulary, k: int = 12
) -> SearchResult:
    """The ``k`` database points nearest to the centres a text query names.

    Parameters
    ----------
    space : ClusterSpace
    z_db : ndarray of shape (n_db, latent_numel)
        Flat latents of the database (e.g. the run's training images).
    text : str
        E.g. ``"red stripes"``, ``"Checks"``, ``"3"``.
    vocab : Vocabulary
        From :func:`build_vocabulary`.
    k : int

    Returns
    -------
    SearchResult

    Raises
    ------
    QueryError
        See :func:`parse_query`.
    """
    wanted = parse_query(text, vocab)
    v = space.vectors(z_db)
    d2 = np.zeros(len(v))
    inside = np.ones(len(v), dtype=bool)
    for a, c in wanted.items():
        attr = space.attributes[a]
        da = np.linalg.norm(v[:, attr.lo : attr.hi] - attr.centers[c], axis=1)
        d2 += da**2
        inside &= da <= attr.radii[c]
    k = max(1, min(int(k), len(v)))
    ids = np.argpartition(d2, k - 1)[:k]
    ids = ids[np.argsort(d2[ids], kind="stable")]
    query = {
        space.attributes[a].name: space.attributes[a].class_names[c] for a, c in wanted.items()
    }
    return SearchResult(query, ids, np.sqrt(d2[ids]), inside[ids], int(inside.sum()), space.rule)
