from collector.cli import cli

cli()
