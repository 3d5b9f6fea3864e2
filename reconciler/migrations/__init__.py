"""Alembic migrations of the reconciler's schema (run them with ``reconciler db upgrade``).

A package so that a regular (non-editable) install ships them; ``env.py`` is loaded by
Alembic, never imported.
"""
