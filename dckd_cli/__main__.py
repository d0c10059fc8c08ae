from dckd_cli.cli.app import app

app()
