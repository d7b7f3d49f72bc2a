"""Nested Learning Lab: the science, importable without Streamlit."""
