"""The analyst console: a web application and HTTP API over the whole loop."""
