"""`python -m outfs` runs the CLI."""

from outfs.cli import main

main()
