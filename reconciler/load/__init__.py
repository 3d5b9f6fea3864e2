"""Loading stage: manifest files -> YAML documents (Go/YAML 1.2 typing) -> SOPS decryption ->
validated :class:`~reconciler.model.desired.DesiredState` plus diagnostics."""
