"""Renderers: pure functions from records to text."""
