"""The two-host benign test site (127.0.0.2 and 127.0.0.3) with planted, distractor and hostile
pages, its ``test_site`` fixture, and the reference hashes of its images."""
