"""What the pages share: cached heavy objects (landmarker, mask library, models) and the error box."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import streamlit as st

from synthface.app.helpers import AppError, load_library


@st.cache_resource(show_spinner=False)
def detector():
    """One MediaPipe landmarker for the server (up to 4 faces), with a lock: sessions run in threads."""
    from synthface.landmarks import LandmarkDetector

    return LandmarkDetector(max_faces=4), threading.Lock()


def detect(rgb):
    from synthface.app.helpers import detect_faces

    found, lock = detector()
    with lock:
        return detect_faces(rgb, found)


@st.cache_resource(show_spinner=False)
def library(mask_dirs: tuple[str, ...]):
    return load_library(mask_dirs)


@contextmanager
def user_errors():
    """Show bad input as an error box in the page; the rest of the page and the app keep running."""
    try:
        yield
    except AppError as error:
        st.error(str(error), icon="⚠️")
