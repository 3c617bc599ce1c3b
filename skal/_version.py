"""The package version (its own module, so submodules can read it)."""

__version__ = "0.1.0.dev0"
