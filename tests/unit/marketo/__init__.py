"""Unit tests of the Marketo edge."""
