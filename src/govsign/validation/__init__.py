"""The validation core: ETSI EN 319 102-1 validation of signed documents, with bilingual reports.

A pure core (no web, SQL or settings): it gets a :class:`~govsign.validation.policy.ValidationPolicy`
(trust anchors, bounds) and a :class:`~govsign.validation.policy.StatusSource` (our own CAs'
status), and returns :class:`~govsign.validation.report.VerificationReport` parts.
"""
