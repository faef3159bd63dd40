"""RFC 3161 Time-Stamping Authority: a pure core (no HTTP, SQL or settings)."""

from govsign.tsa.authority import TimeStampAuthority, TSAPolicy, TSASigner, random_serial

__all__ = ["TSAPolicy", "TSASigner", "TimeStampAuthority", "random_serial"]
