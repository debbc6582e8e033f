"""Dataset browser: a folder written by `synthface generate`, filtered by its labels and settings,
as a paged grid of samples with their unmasked twins and occlusion maps, and the balance
report's target-vs-achieved charts."""

from __future__ import annotations

import numpy as np
import streamlit as st

from synthface.app import helpers
from synthface.app.views.common import user_errors

PER_PAGE = (12, 24, 48)


@st.cache_data(show_spinner=False, max_entries=4)
def _table(folder: str, modified: float):
    return helpers.open_dataset(folder)


def show(options) -> None:
    st.title("Dataset browser")
    folder = st.text_input("Dataset folder (written by `synthface generate`)", value=options.data, key="browser_folder")
    if not folder.strip():
        st.info("Type the path of a generated dataset folder, e.g. out/mixed_50.")
        return
    with user_errors():
        table = _table(folder.strip(), _modified(folder.strip()))
        report = helpers.read_report(folder.strip())
        samples, charts = st.tabs(["Samples", "Balance report"])
        with samples:
            _samples(folder.strip(), table)
        with charts:
            _charts(report)


def _modified(folder: str) -> float:
    """The metadata's modification time, so a dataset regenerated in place is read again."""
    from pathlib import Path

    try:
        from synthface.dataset import metadata_file

        return metadata_file(Path(folder).expanduser()).stat().st_mtime
    except Exception:  # open_dataset reports what is wrong
        return 0.0


def _samples(folder: str, table) -> None:
    options = helpers.filter_options(table)
    chosen = {}
    columns = st.columns(4)
    for position, (column, values) in enumerate(options.items()):
        chosen[column] = columns[position % 4].multiselect(helpers.FILTER_COLUMNS[column], values, key=f"browser_filter_{column}",
                                                           placeholder="all")
    rows = helpers.apply_filters(table, chosen)
    total = len(helpers.primary_rows(table))
    left, middle, right = st.columns([2, 1, 1])
    left.markdown(f"**{len(rows)} of {total} samples** match", help="Unmasked twins are shown beside their sample, not counted.")
    per_page = middle.selectbox("Per page", PER_PAGE, key="browser_per_page")
    pages = max(1, -(-len(rows) // per_page))
    page = right.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, step=1, key="browser_page")
    shown, _ = helpers.page_of(rows, int(page), per_page)
    views = helpers.sample_views(folder, shown, table)
    st.caption("Each tile: the sample | its unmasked twin | its occlusion map (white = covered); grey where it has none.")
    with st.container(key="browser-grid"):
        grid = st.columns(2)
        for position, view in enumerate(views):
            with grid[position % 2]:
                st.image(_strip(view), caption=view.caption, width="stretch")


def _strip(view: helpers.SampleView) -> np.ndarray:
    """The sample, its unmasked twin and its occlusion map side by side; light grey where it has none."""
    import cv2

    from synthface.images import read_image_rgb

    image = read_image_rgb(view.image) if view.image.is_file() else np.full((128, 128, 3), 200, np.uint8)
    height, width = image.shape[:2]
    parts = [image]
    for extra in (view.twin, view.occlusion):
        part = np.full((height, width, 3), 236, np.uint8)
        if extra is not None and extra.is_file():
            try:
                part = cv2.resize(read_image_rgb(extra), (width, height))
            except ValueError:  # listed but unreadable: stays grey
                pass
        parts.append(part)
    gap = np.full((height, max(2, width // 40), 3), 255, np.uint8)
    return np.concatenate([parts[0], gap, parts[1], gap, parts[2]], axis=1)


def _charts(report) -> None:
    if report is None:
        st.info("This folder has no report.json (it is written by `synthface generate`).")
        return
    import matplotlib.pyplot as plt

    figure = helpers.balance_chart(report)
    st.pyplot(figure, width="stretch")
    plt.close(figure)
    if report.get("uses_demo_pool"):
        st.warning("Made from the bundled demo pool (two faces): it cannot meet demographic targets.")
    unmet = report.get("unmet_targets") or []
    if unmet:
        st.markdown("**Targets missed by more than 5 points**\n\n" + "\n".join(f"- {line}" for line in unmet))
    imbalance = report.get("imbalance") or {}
    if imbalance:
        import pandas as pd

        rows = [{"attribute": attribute, "side": side, **values}
                for attribute, sides in imbalance.items() for side, values in sides.items() if values]
        st.markdown("**Imbalance metrics** (see docs/balance-metrics.md)")
        st.dataframe(pd.DataFrame(rows), hide_index=True)
