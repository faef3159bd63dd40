"""Who may do what: roles, permissions and agency scoping (pure logic, no HTTP or SQL)."""
