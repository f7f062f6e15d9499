"""Streamlit helpers shared by the pages. Core never imports this package."""
