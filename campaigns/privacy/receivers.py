"""Signal receivers of the privacy room (filled in below as the audit trail grows)."""
