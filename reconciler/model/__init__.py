"""Hand-off types between stages: pure data, no I/O.

Every stage imports from here and no stage imports another stage's internals. Nothing in
this package may import SQLAlchemy, cryptography, click or subprocess.
"""
