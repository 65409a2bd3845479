"""Plotly figures of the Manifold page: several models side by side, arrays in, ``go.Figure`` out.

Every figure is SVG (no WebGL: the page shows six of them). Models are passed
as a mapping ``name -> lsx.analysis.manifold.SweepResult`` (or ``StrataSummary`` /
``PathProfile``) in display order, one colour per model throughout. No Streamlit here.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from lsx.analysis.manifold import MODES, PathProfile, StrataSummary, SweepResult

MODEL_COLOURS = qualitative.D3
OTHER = "other"
MAX_TRIPLES = 12  # strata named in the legend (most images over all models); the rest: "other"
_MARGIN = {"l": 50, "r": 20, "t": 60, "b": 40}


def _colour(i: int) -> str:
    return MODEL_COLOURS[i % len(MODEL_COLOURS)]


def _level_title(results: Mapping[str, SweepResult]) -> str:
    first = next(iter(results.values()), None)
    return "perturbation level" if first is None else f"{first.config.perturbation} level"


def rank_curves(summaries: Mapping[str, StrataSummary], level_title: str = "level") -> go.Figure:
    """Mean rank per mode versus level, one line per model, the mode size dotted.

    Parameters
    ----------
    summaries : mapping name -> StrataSummary
    level_title : str
        x-axis title.

    Returns
    -------
    go.Figure
    """
    fig = make_subplots(
        rows=1, cols=3, subplot_titles=[f"mode {i + 1}: {m}" for i, m in enumerate(MODES)]
    )
    for i, (name, s) in enumerate(summaries.items()):
        for m in range(3):
            fig.add_trace(
                go.Scatter(
                    x=s.levels,
                    y=s.mean_ranks[:, m],
                    mode="lines+markers",
                    name=name,
                    legendgroup=name,
                    showlegend=m == 0,
                    line={"color": _colour(i)},
                    hovertemplate=f"{name}<br>level %{{x}}<br>mean rank %{{y:.2f}}<extra></extra>",
                ),
                row=1,
                col=m + 1,
            )
    sizes = sorted({s.mode_sizes for s in summaries.values()})
    for m in range(3):
        for size in {sz[m] for sz in sizes}:  # one dotted line per distinct mode size
            fig.add_hline(
                y=size, line_dash="dot", line_color="grey", row=1, col=m + 1,
                annotation_text=f"full rank {size} (SPD)", annotation_position="bottom right",
            )  # fmt: skip
    fig.update_xaxes(title_text=level_title)
    fig.update_yaxes(title_text="mean numerical rank", col=1)
    fig.update_layout(height=360, margin=_MARGIN, title="Rank versus perturbation, per mode")
    return fig


def strata_histograms(
    summaries: Mapping[str, StrataSummary], level_title: str = "level"
) -> go.Figure:
    """Share of images per rank triple (stratum) at each level: stacked bars, one row per model.

    The ``MAX_TRIPLES`` most frequent triples of each model are named; the rest are "other".
    """
    names = list(summaries)
    fig = make_subplots(
        rows=max(len(names), 1),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=[f"{n}: {summaries[n].n_strata} strata" for n in names],
    )
    named = _named_triples(summaries)
    colours = qualitative.Set3 + qualitative.Pastel1 + qualitative.Pastel2
    shown: set[str] = set()
    for row, name in enumerate(names, start=1):
        s = summaries[name]
        n = sum(k for _, k in s.counts[0])
        labels = [f"{lv:g}" for lv in s.levels]
        for j, triple in enumerate([*named, OTHER]):
            shares = [_share(dict(counts), triple, named) / n for counts in s.counts]
            if not any(shares):
                continue
            label = str(triple)
            fig.add_trace(
                go.Bar(
                    x=labels,
                    y=shares,
                    name=label,
                    legendgroup=label,  # one legend entry per triple, shared by the rows
                    showlegend=label not in shown,
                    marker_color="lightgrey" if triple == OTHER else colours[j % len(colours)],
                    hovertemplate=f"{name}<br>triple {label}<br>level %{{x}}<br>share %{{y:.1%}}"
                    "<extra></extra>",
                ),
                row=row,
                col=1,
            )
            shown.add(label)
    fig.update_layout(
        barmode="stack",
        height=230 * max(len(names), 1) + 70,
        margin=_MARGIN,
        title="Strata: share of images per rank triple at each level",
        legend={"title": {"text": "rank triple"}},
    )
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    fig.update_xaxes(type="category")
    fig.update_xaxes(title_text=level_title, row=len(names), col=1)
    return fig


def _named_triples(summaries: Mapping[str, StrataSummary]) -> list[tuple[int, ...]]:
    """The ``MAX_TRIPLES`` triples holding the most images over all models and levels."""
    total: dict[tuple[int, ...], float] = {}
    for s in summaries.values():
        n = sum(k for _, k in s.counts[0])
        for counts in s.counts:
            for triple, k in counts:
                total[triple] = total.get(triple, 0.0) + k / n
    return [t for t, _ in sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_TRIPLES]]


def _share(counts: dict, triple: object, named: list) -> int:
    if triple == OTHER:
        return sum(v for t, v in counts.items() if t not in named)
    return counts.get(triple, 0)


def spectrum_heatmaps(results: Mapping[str, SweepResult]) -> go.Figure:
    """Mean ``log10(lambda_j / lambda_1)`` per level (rows) and eigenvalue index (columns):
    one heatmap per model (row) and mode (column). Spatial latents only."""
    names = [n for n, r in results.items() if r.mean_log_spectra is not None]
    titles = [f"{n}: mode {m + 1} ({MODES[m]})" for n in names for m in range(3)]
    fig = make_subplots(
        rows=max(len(names), 1),
        cols=3,
        subplot_titles=titles,
        vertical_spacing=0.12,
        horizontal_spacing=0.05,
    )
    for row, name in enumerate(names, start=1):
        r = results[name]
        for m, spec in enumerate(r.mean_log_spectra):
            fig.add_trace(
                go.Heatmap(
                    z=spec,
                    x=np.arange(1, spec.shape[1] + 1),
                    y=[f"{lv:g}" for lv in r.levels],
                    zmin=-16,
                    zmax=0,
                    colorscale="Viridis",
                    showscale=row == 1 and m == 2,
                    colorbar={"title": "log10 λj/λ1"},
                    hovertemplate=f"{name}<br>level %{{y}}<br>"
                    "λ%{x}: 10^%{z:.1f} λ1<extra></extra>",
                ),
                row=row,
                col=m + 1,
            )
    fig.update_xaxes(title_text="eigenvalue index j")
    fig.update_yaxes(type="category")
    fig.update_layout(
        height=230 * max(len(names), 1) + 70,
        margin=_MARGIN,
        title="Singular spectra of the mode covariances (mean over images)",
    )
    return fig


def subspace_curves(results: Mapping[str, SweepResult]) -> go.Figure:
    """Dimension of the principal subspace, Grassmann distance and mean principal angle to the
    clean subspace, versus level, one line per model. A capped dimension is drawn hollow."""
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=[
            "dimension (energy)",
            "Grassmann distance (rad)",
            "mean principal angle (rad)",
        ],
    )
    for i, (name, r) in enumerate(results.items()):
        sub = r.subspace
        symbols = ["circle-open" if c else "circle" for c in sub.capped]
        series = (sub.dims, sub.grassmann, sub.angles.mean(axis=1))
        for col, y in enumerate(series, start=1):
            fig.add_trace(
                go.Scatter(
                    x=r.levels,
                    y=y,
                    mode="lines+markers",
                    name=f"{name} ({sub.space})",
                    legendgroup=name,
                    showlegend=col == 1,
                    line={"color": _colour(i)},
                    marker={"symbol": symbols if col == 1 else "circle", "size": 8},
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text=_level_title(results))
    fig.update_layout(
        height=360,
        margin=_MARGIN,
        title="Principal subspaces of the mapped points versus the clean one (hollow: capped)",
    )
    return fig


def trajectories(
    results: Mapping[str, SweepResult], sample: int, max_points: int = 1000
) -> go.Figure:
    """One sample's path on each model's latent map (PCA of the clean latents) as the level
    grows, over the clean cloud in grey.

    Parameters
    ----------
    results : mapping name -> SweepResult
    sample : int
        Index of the image in the swept array (clipped to the valid range).
    max_points : int
        Clean points drawn per model (evenly spaced).
    """
    names = list(results)
    fig = make_subplots(rows=1, cols=max(len(names), 1), subplot_titles=names)
    for col, name in enumerate(names, start=1):
        r = results[name]
        i = int(np.clip(sample, 0, r.n_samples - 1))
        keep = np.linspace(0, r.n_samples - 1, min(max_points, r.n_samples)).astype(int)
        clean = r.map_xy[0, keep]
        fig.add_trace(
            go.Scatter(
                x=clean[:, 0],
                y=clean[:, 1],
                mode="markers",
                name="clean images",
                marker={"color": "lightgrey", "size": 4},
                showlegend=col == 1,
                legendgroup="clean",
                hoverinfo="skip",
            ),
            row=1,
            col=col,
        )
        path = r.map_xy[:, i]
        fig.add_trace(
            go.Scatter(
                x=path[:, 0],
                y=path[:, 1],
                mode="lines+markers+text",
                name=f"sample {i}",
                text=[
                    f"{lv:g}" if k in (0, len(r.levels) - 1) else ""
                    for k, lv in enumerate(r.levels)
                ],
                customdata=r.levels,
                textposition="top center",
                marker={"color": r.levels, "colorscale": "Plasma", "size": 10},
                line={"color": "black", "width": 1},
                showlegend=col == 1,
                legendgroup="path",
                hovertemplate="level %{customdata:g}<extra></extra>",
            ),
            row=1,
            col=col,
        )
    fig.update_xaxes(title_text="PC 1 of the clean latents")
    fig.update_yaxes(title_text="PC 2", col=1)
    fig.update_layout(height=380, margin=_MARGIN, title=f"Sample {sample} as the level grows")
    return fig


def path_profiles(profiles: Mapping[str, PathProfile]) -> go.Figure:
    """Step size of the decoded images along a straight latent path, and the mode-1 rank on it."""
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=["RMS pixel change per step", "rank triple along the path (mode 1)"],
    )
    for i, (name, p) in enumerate(profiles.items()):
        mid = (p.t[1:] + p.t[:-1]) / 2
        fig.add_trace(
            go.Scatter(
                x=mid,
                y=p.steps,
                mode="lines+markers",
                name=f"{name} (spike ratio {p.spike_ratio:.2f})",
                line={"color": _colour(i)},
                legendgroup=name,
            ),
            row=1,
            col=1,
        )
        if p.ranks is not None:
            text = [str(tuple(int(v) for v in t)) for t in p.ranks]
            fig.add_trace(
                go.Scatter(
                    x=p.t,
                    y=p.ranks[:, 0],
                    mode="lines+markers",
                    line={"color": _colour(i), "shape": "hv"},
                    text=text,
                    hovertemplate="t %{x:.2f}<br>triple %{text}<extra></extra>",
                    showlegend=False,
                    legendgroup=name,
                ),
                row=1,
                col=2,
            )
    fig.update_xaxes(title_text="t (0: image A, 1: image B)")
    fig.update_layout(height=340, margin=_MARGIN, title="Smoothness along a linear latent path")
    return fig


def path_strip(profile: PathProfile, n_frames: int = 11) -> np.ndarray:
    """Up to ``n_frames`` decoded images of a path side by side (uint8, for ``st.image``)."""
    from lsx.viz.images import scale_for, side_by_side, to_uint8

    idx = np.unique(np.linspace(0, len(profile.images) - 1, n_frames).round().astype(int))
    scale = scale_for(profile.images.shape[-2], 56)
    return side_by_side([to_uint8(profile.images[i], scale=scale) for i in idx])
