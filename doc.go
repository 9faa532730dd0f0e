// Package messageapi holds the domain of the message API: messages, their
// reactions, the projected view of a message, the event that announces a
// reaction change, the error kinds and the limits every layer agrees on.
//
// The package imports only the standard library. The command, query and
// projection packages implement the use cases in terms of these types;
// postgres and the packages under redis (pagecache, stream, feed, on the
// client of package redis) implement the storage those use cases consume;
// httpapi, auth and sse are the HTTP transport; cmd/api and cmd/worker wire
// them together.
package messageapi
