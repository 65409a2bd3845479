"""Claims: does each paper's claim hold in lsx's measurements, against which baselines, and
with which command can I check it again?

Shows the latest report of each claim that ``python -m lsx reproduce`` wrote into the reports
folder: the verdict, the rule it follows (fixed before the numbers), the table and settings.
"""

from __future__ import annotations

import streamlit as st

from lsx.app import claims, state, widgets

state.init("Claims")
widgets.run_picker()  # the shared sidebar; this page does not use the chosen run
st.title("Claims")
folder = claims.reports_folder()
st.markdown(
    "Each paper's claim, measured by lsx against the strongest fair baselines. The rule of each "
    "verdict is fixed before the numbers; a `quick` report is a smoke test and has no verdict. "
    f"Reports are read from `{folder}`."
)
entries = claims.read_entries(folder)
if all(e.report is None and e.problem is None for e in entries):
    st.info(
        "No claim has been reproduced here yet. From a terminal in the repository run "
        "`python -m lsx reproduce --budget full --seeds 3` (all four claims; hours on 2 CPU "
        "cores) or `python -m lsx reproduce --budget quick` (a smoke test, under a minute), "
        "then reload this page."
    )
    st.stop()

st.dataframe(claims.verdict_rows(entries), hide_index=True)
for entry in entries:
    report = entry.report
    with st.expander(report["title"] if report else entry.claim, expanded=report is not None):
        if entry.problem:
            st.error(entry.problem)
            continue
        if report is None:
            st.info(f"Not run yet. Regenerate with `{entry.command}`.")
            continue
        st.markdown(f"**Claim.** {report['statement']}")
        st.markdown(f"**Verdict: {report['verdict']}** (budget `{report['budget']}`)")
        st.markdown(f"**Rule (fixed before the numbers).** {report['rule']}")
        st.markdown(report["table"])
        st.markdown("\n".join(f"- {v['setting']}: **{v['verdict']}**" for v in report["verdicts"]))
        st.markdown(f"Regenerate: `{entry.command}` ({report['wall_s']:.0f} s last time).")
        st.json(report["settings"], expanded=False)
