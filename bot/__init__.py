"""The wiring: settings read once, the clients and workers built and started, the web server, the CLI."""
