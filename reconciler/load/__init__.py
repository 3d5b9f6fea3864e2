"""Loading stage: manifest files -> YAML documents (Go/YAML 1.2 typing) -> SOPS decryption ->
validated :class:`~reconciler.model.desired.DesiredState` plus diagnostics.

Modules, in the order a file meets them: ``manifests`` (discovery, reading, merging),
``templates``, ``analyze`` (one file, no keys), ``manifest_model`` (the pydantic models of
the format) with ``pydantic_errors`` (their errors as findings), ``rules`` (domain rules
common to all platforms) with ``platforms/`` (what differs per platform) and ``catalogs``
(event names), ``findings`` and ``positions`` (what a rule reports, and where), ``decrypt``,
``desired_state``, ``cross_file``; ``pool`` (chunks and worker processes) and ``stage``
(:func:`~reconciler.load.stage.load_desired_state`) run them; ``cache``, ``cache_file`` and
``cache_key`` keep verdicts of unchanged files; ``validate`` is the ``reconciler validate``
verb.
"""
