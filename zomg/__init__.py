"""zomg: named workspaces ("boxes") for running commands and shells."""

# The single source of the version: setup.cfg reads it with `attr:`, the CLI prints it.
__version__ = "0.1.0"
