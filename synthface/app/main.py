"""The Streamlit script of `synthface app` (run by `synthface app`, or `streamlit run` on this file).

Options after `--` on the streamlit command line: --masks DIR (repeatable), --checkpoint PATH,
--data DIR, --device NAME. `synthface app` passes its own options through.
"""

from __future__ import annotations

import argparse
import sys

import streamlit as st

from synthface.app.views import browser, predict, studio


def parse_options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="synthface app")
    parser.add_argument("--masks", action="append", default=[], help="Extra folder of mask definitions (repeatable).")
    parser.add_argument("--checkpoint", default="", help="Checkpoint (.pt) for the Predict page.")
    parser.add_argument("--data", default="", help="Dataset folder opened by the Dataset browser.")
    parser.add_argument("--device", default="cpu", help="Device for the model: cpu, cuda, cuda:N or auto.")
    return parser.parse_args(argv)


def main() -> None:
    options = parse_options(sys.argv[1:])
    st.set_page_config(page_title="synthface", page_icon="😷", layout="wide")
    pages = [
        st.Page(lambda: studio.show(options), title="Mask studio", url_path="studio", default=True),
        st.Page(lambda: predict.show(options), title="Predict", url_path="predict"),
        st.Page(lambda: browser.show(options), title="Dataset browser", url_path="browser"),
    ]
    st.navigation(pages).run()


main()
