"""Storage, one module per concern: `tables` and `db` (schema, engines, migrations), `sql`
(statements on the driver's cursor), `cases` (load, find, save), `effects` (the effect
writer), `claims` (taking due rows), `listen` (PostgreSQL wake-ups), `tokens`, and `views`
(the read side every GET goes through)."""
