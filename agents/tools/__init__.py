"""Helper programs the shipped agents run as processes of their own."""
