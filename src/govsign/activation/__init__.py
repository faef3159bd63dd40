"""Sole control of an official's signing key: second factors (TOTP, PIN) and per-transaction
signature activations bound to the hashes being signed (SCAL2 in CSC terms). A pure core."""
