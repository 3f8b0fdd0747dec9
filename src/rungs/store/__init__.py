"""Storage, one module per concern: `tables` and `db` (schema, engines, migrations), `sql`
(statements on the driver's cursor), `cases` (load, find, save), `effects` (the effect
writer), `claims` (taking due rows), `outbox` (outbox rows, claims and results), `listen`
(PostgreSQL wake-ups), `links` (one-click link secret and uses), `tokens`, `jsonbytes`
(JSON in and out), and `views` (the read side every GET goes through)."""
