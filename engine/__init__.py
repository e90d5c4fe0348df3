"""Compact real LLM engine (PyTorch): see engine/README in the project README."""
