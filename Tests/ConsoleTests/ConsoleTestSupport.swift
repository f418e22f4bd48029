// Helpers for the console tests (a served console over loopback, accounts, a cookie-keeping client) follow.
