from admin.cli import cli

cli()
