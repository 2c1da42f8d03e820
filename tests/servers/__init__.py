"""Loopback servers the tests start on port 0: SMTP (aiosmtpd), webhook and RDAP.
Each module also provides a pytest fixture, registered in ``tests/conftest.py``."""
