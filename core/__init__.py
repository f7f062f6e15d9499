"""LabelTune's core: everything but the Streamlit pages. Never imports streamlit."""
