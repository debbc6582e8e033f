"""Predict: a checkpoint and photos -> each face's age, gender, race and mask with probabilities,
and the model's attention map over the face, as `synthface predict` computes them."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import streamlit as st

from synthface.app import helpers
from synthface.app.views.common import user_errors


@st.cache_resource(show_spinner=False, max_entries=2)
def _predictor(path: str, modified: float, device: str):
    """One loaded model per (file, modification time): editing or replacing the file reloads it."""
    return helpers.load_predictor(path, device=device)


def _checkpoint_path(options) -> str:
    """The checkpoint chosen: a path typed (default: --checkpoint), or an uploaded .pt saved to a temp file."""
    typed = st.text_input("Checkpoint (.pt written by `synthface train`)", value=options.checkpoint, key="predict_checkpoint")
    upload = st.file_uploader("...or upload a checkpoint", type=None, key="predict_checkpoint_upload")
    if upload is None:
        return typed.strip()
    data = upload.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"synthface-app-{digest}.pt"
    if not path.exists():
        path.write_bytes(data)
    return str(path)


def show(options) -> None:
    st.title("Predict")
    st.caption("Faces found with the generator's landmarker, aligned with its crop, classified by a trained model.")
    with user_errors():
        path = _checkpoint_path(options)
        if not path:
            st.info("Give a checkpoint: `synthface app --checkpoint runs/oam/best.pt`, a path above, or an upload.")
            return
        file = Path(path).expanduser()
        if not file.is_file():
            raise helpers.AppError(f"{file}: checkpoint not found")
        device = _device(options.device)
        with st.spinner("Loading the model..."):
            predictor = _predictor(str(file), file.stat().st_mtime, device)
        info = predictor.info
        st.success(f"Model: {file.name}, {info['image_size']} px input, races {info['race_taxonomy']}, "
                   f"attention {'on' if info['attention'] else 'off'}, epoch {info['epoch']}, device {device}")
        uploads = st.file_uploader("Photos", accept_multiple_files=True, key="predict_photos")
        if not uploads:
            st.info("Upload one or more photos with faces.")
            return
    for upload in uploads or []:
        with user_errors():
            _photo(predictor, upload)


def _device(name: str) -> str:
    from synthface.evaluation.inference import resolve_device

    return resolve_device(name)


def _photo(predictor, upload) -> None:
    from synthface.evaluation.predict import annotate

    st.header(upload.name)
    rgb = helpers.load_photo(upload.getvalue(), upload.name)
    with st.spinner("Detecting and classifying..."):
        found = helpers.predict_photo(predictor, rgb)
    st.image(annotate(rgb, [result.entry for result in found]), caption=f"{len(found)} face(s)", width=480)
    for result in found:
        entry = result.entry
        with st.container(key=f"predict-{upload.file_id}-face-{entry['face']}", border=True):
            st.markdown(f"**Face {entry['face'] + 1}**: age **{entry['age']:.0f}**, "
                        + ", ".join(f"{head} **{entry[head]['label']}** ({entry[head]['probabilities'][entry[head]['label']]:.0%})"
                                    for head in ("gender", "race", "mask")))
            left, middle, right = st.columns([1, 1, 2])
            left.image(result.crop, caption="what the model sees (aligned crop)", width="stretch")
            heat = helpers.attention_overlay(result)
            if heat is None:
                middle.info("This model was trained without attention (no map to show).")
            else:
                middle.image(heat, caption="attention map (red = weighted most)", width="stretch")
            right.dataframe(helpers.probability_table(entry), hide_index=True, width="stretch",
                            column_config={"probability": st.column_config.ProgressColumn(
                                "probability", min_value=0.0, max_value=1.0, format="%.3f")})
            with st.expander("JSON (as `synthface predict` prints it)"):
                st.json(entry, expanded=False)
