"""One module per subcommand; each returns a result object and never prints."""
