"""Shared fixtures for the project's own tests."""
