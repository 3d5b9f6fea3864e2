"""The pure core: diff, risk scoring, ordering and planning.

Nothing here touches the database, the filesystem, SOPS, the clock or randomness, and
nothing imports SQLAlchemy, cryptography, click or subprocess (a test enforces this).
"""
