"""The backend conformance suite (see conftest.py)."""
