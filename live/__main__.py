from live.cli import cli

cli()
