// Package sse serves the live events to clients as Server-Sent Events.
//
// A Hub reads the live feed once per process and fans each entry out to
// the process's streams, each filtered by message or channel. It keeps the newest
// entries in a window in memory, so that the clients that reconnect
// together after a restart or a network blip resume (Last-Event-ID) with
// no read of the feed; resumes from before the window read the feed page
// by page, a few at a time. The Feed it reads knows the feed's store;
// the hub knows only positions (messageapi.FeedPosition). DESIGN.md has
// the protocol.
package sse
