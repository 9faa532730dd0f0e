// Package postgres implements the storage the use cases consume on top of
// PostgreSQL, the source of truth: the messages and reactions write model,
// the message_views read model and the projection's fold.
//
// Every method bounds its work with the DB's query timeout and translates
// driver errors into messageapi errors: a unique violation becomes a
// conflict, a foreign-key violation on a message becomes not-found, and a
// connection failure or timeout becomes unavailable. Driver text stays in
// the wrapped cause, for logs only.
package postgres
