"""The package version (one place: the face, the command line and the build read it here)."""

__version__ = "0.1.0"
