"""govsign: a certificate authority and signing service whose keys live in a PKCS#11 HSM."""

__version__ = "0.1.0"
