"""The data-request bot's shell: settings, wiring, web server, CLI and the Buy with Prime client."""
