"""The organizers' side: `make run` under supervisord, and a dashboard behind a secret."""
