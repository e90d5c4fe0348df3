"""Streamlit what-if dashboard."""
