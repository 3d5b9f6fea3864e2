"""Command-line interface: thin click commands over :mod:`reconciler.commands`."""
