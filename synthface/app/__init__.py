"""`synthface app`: a local web app (Streamlit) to try masks on a photo, run a model, and browse a dataset.

`helpers` holds the page logic as plain functions over the library (tested without a browser);
`views/` draws one page each; `main` is the Streamlit script; `launch` starts the server.
Streamlit is an optional extra: `pip install -e ".[app]"`.
"""
