"""Helpers shared by the tests (imported as ``helpers.<module>``)."""
