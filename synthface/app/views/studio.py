"""Mask studio: a photo (uploaded or a bundled demo), every face with the fitted mask, its occlusion
map and unmasked twin; controls for type, wear style, palette, pattern, lighting and seed;
downloads of the image and of the scenario YAML that makes samples like it."""

from __future__ import annotations

import streamlit as st

from synthface.app import helpers
from synthface.app.views.common import detect, library, user_errors

DEMO_LABELS = {"astronaut": "Astronaut (Eileen Collins, NASA)", "grace_hopper.jpg": "Grace Hopper (US Navy)"}


def _photo() -> tuple[object, bytes | None, str] | None:
    """(RGB photo, its bytes when uploaded, its name), or None before one is chosen."""
    source = st.radio("Photo", ["Demo face", "Upload"], horizontal=True, key="studio_source")
    if source == "Demo face":
        name = st.selectbox("Demo face", helpers.DEMO_PHOTOS, format_func=DEMO_LABELS.get, key="studio_demo")
        return helpers.demo_photo(name), None, name
    upload = st.file_uploader("Photo with a face", key="studio_upload",
                              help=f"JPEG, PNG, WebP, BMP or TIFF, up to {helpers.MAX_UPLOAD_PIXELS / 1e6:.0f} megapixels.")
    if upload is None:
        st.info("Upload a photo, or pick a demo face.")
        return None
    data = upload.getvalue()
    return helpers.load_photo(data, upload.name), data, upload.name


def _controls(lib) -> helpers.StudioSettings:
    names = lib.names()
    mask_type = st.selectbox("Mask type", names, index=names.index("surgical") if "surgical" in names else 0,
                             key="studio_type", help="Every type of the library, with the --masks folders given to `synthface app`.")
    definition = lib.get(mask_type)
    st.caption(f"{definition.description} ({'mask, labelled mask=1' if definition.is_mask else 'confuser, labelled mask=0'})")
    choices = helpers.studio_choices(lib, mask_type)
    wear = st.selectbox("Wear style", choices["wear_style"], key=f"studio_wear_{mask_type}")
    palette = st.selectbox("Colour palette", choices["palette"], key="studio_palette")
    pattern = st.selectbox("Pattern", choices["pattern"], key=f"studio_pattern_{mask_type}")
    lighting = st.selectbox("Lighting preset", choices["lighting"], key="studio_lighting")
    seed = st.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, step=1, key="studio_seed",
                           help="Same photo, settings and seed: same pixels.")
    return helpers.StudioSettings(mask_type, wear, palette, pattern, lighting, int(seed))


def show(options) -> None:
    st.title("Mask studio")
    st.caption("The generator's own alignment, mask fitting and lighting on your photo. Nothing leaves this machine.")
    with user_errors():
        lib = library(tuple(options.masks))
        left, right = st.columns([1, 3], gap="large")
        with left:
            chosen = _photo()
            settings = _controls(lib)
        with right:
            if chosen is None:
                return
            rgb, data, name = chosen
            with st.spinner("Finding faces and fitting the mask..."):
                faces = detect(rgb)
                rendered = helpers.render_studio(rgb, faces, lib, settings, helpers.jpeg_quality_of(data))
            st.image(rgb, caption=f"{name}: {len(faces)} face(s) found", width=320)
            for face in rendered:
                _face(face, settings, name)
            st.subheader("Scenario fragment")
            fragment = helpers.scenario_fragment(settings, lib)
            st.code(fragment, language="yaml")
            st.download_button("Download the scenario YAML", fragment, file_name=f"{settings.mask_type}_studio.yaml",
                               mime="text/yaml", key="studio_yaml")


def _face(face: helpers.StudioFace, settings: helpers.StudioSettings, photo_name: str) -> None:
    st.subheader(f"Face {face.index + 1}")
    if face.error:
        st.warning(face.error)
        return
    with st.container(key=f"studio-face-{face.index}"):
        columns = st.columns(3)
        columns[0].image(face.image, caption=f"{settings.mask_type} / {settings.wear_style}", width="stretch")
        columns[1].image(face.occlusion, caption=f"occlusion map: {face.occluded_fraction:.0%} of the face covered",
                         width="stretch")
        columns[2].image(face.twin, caption="unmasked twin (same crop and light)", width="stretch")
    stem = photo_name.rsplit(".", 1)[0]
    st.download_button(f"Download face {face.index + 1} (PNG)", helpers.encode_png(face.image),
                       file_name=f"{stem}_{settings.mask_type}_{settings.seed}_face{face.index + 1}.png", mime="image/png",
                       key=f"studio_png_{face.index}")
    with st.expander("What was drawn (the metadata columns this sample would have)"):
        st.json(face.metadata, expanded=False)
