// Package limits bounds what one client, and all of them together, may
// take of an API process: the connections it holds (a cap per client
// address and in all, derived from the open-file limit, with idle
// keep-alive connections evicted first) and the requests it makes per
// window. The live-event streams have their own cap, in package sse.
package limits
